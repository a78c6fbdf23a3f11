import { clusterSuite } from '../contract/cluster.contract.js';
import { natsEngine } from '../helpers/cluster-engines.js';

await clusterSuite(natsEngine);
