import { clusterSuite } from '../contract/cluster.contract.js';
import { redisClusterEngine } from '../helpers/cluster-engines.js';

await clusterSuite(redisClusterEngine);
