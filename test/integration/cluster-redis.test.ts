import { clusterSuite } from '../contract/cluster.contract.js';
import { redisBinariesMissing, redisEnv, sharedRedisMissing, startRedisServer } from '../helpers/cluster.js';

// The machine's Redis for the shared cases; a redis-server of its own for the restart case.
await clusterSuite({
  name: 'redis',
  unavailable: async () => (await sharedRedisMissing()) ?? redisBinariesMissing(),
  shared: () => Promise.resolve({ env: redisEnv('redis://127.0.0.1:6379'), close: () => Promise.resolve() }),
  throwaway: async () => {
    const server = await startRedisServer();
    return { env: redisEnv(server.url), stop: server.stop, start: server.start };
  },
});
