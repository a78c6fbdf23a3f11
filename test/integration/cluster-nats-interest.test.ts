import { clusterSuite } from '../contract/cluster.contract.js';
import { natsEngine } from '../helpers/cluster-engines.js';

// The same contract with clusterRouting: interest (nodes subscribe to the shards they need).
await clusterSuite({ ...natsEngine, routing: 'interest' });
