import { clusterSuite } from '../contract/cluster.contract.js';
import { redisBinariesMissing, redisClusterEnv, startRedisCluster } from '../helpers/cluster.js';

// A 3-master Redis Cluster started here from redis-server on free ports (sharded pub/sub), and
// a second one for the restart case.
await clusterSuite({
  name: 'redis-cluster',
  unavailable: () => Promise.resolve(redisBinariesMissing()),
  shared: async () => {
    const cluster = await startRedisCluster();
    return { env: redisClusterEnv(cluster.nodes), close: cluster.stop };
  },
  throwaway: async () => {
    const cluster = await startRedisCluster();
    return { env: redisClusterEnv(cluster.nodes), stop: cluster.stop, start: cluster.start };
  },
});
