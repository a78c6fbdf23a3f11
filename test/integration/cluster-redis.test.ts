import { clusterSuite } from '../contract/cluster.contract.js';
import { redisEngine } from '../helpers/cluster-engines.js';

await clusterSuite(redisEngine);
