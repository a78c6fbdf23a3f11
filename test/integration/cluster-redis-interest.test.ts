import { clusterSuite } from '../contract/cluster.contract.js';
import { redisEngine } from '../helpers/cluster-engines.js';

// The same contract with clusterRouting: interest (nodes subscribe to the shards they need).
await clusterSuite({ ...redisEngine, routing: 'interest' });
