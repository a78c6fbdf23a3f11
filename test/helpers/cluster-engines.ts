import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import type { EngineUnderTest } from '../contract/cluster.contract.js';
import {
  natsBinaryMissing,
  natsEnv,
  redisBinariesMissing,
  redisClusterEnv,
  redisEnv,
  sharedNatsMissing,
  sharedRedisMissing,
  startNatsServer,
  startRedisCluster,
  startRedisServer,
} from './cluster.js';

/**
 * The engines the cluster contract runs on, once per routing (test/integration/cluster-*.test.ts).
 */

// The machine's Redis for the shared cases; a redis-server of its own for the restart case.
export const redisEngine: EngineUnderTest = {
  name: 'redis',
  unavailable: async () => (await sharedRedisMissing()) ?? redisBinariesMissing(),
  shared: () => Promise.resolve({ env: redisEnv('redis://127.0.0.1:6379'), close: () => Promise.resolve() }),
  throwaway: async () => {
    const server = await startRedisServer();
    return { env: redisEnv(server.url), stop: server.stop, start: server.start };
  },
};

// A 3-master Redis Cluster started here from redis-server on free ports (sharded pub/sub), and
// a second one for the restart case.
export const redisClusterEngine: EngineUnderTest = {
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
};

const SHARED_NATS = 'nats://127.0.0.1:4222';

// The machine's NATS (with JetStream, for claims) for the shared cases; a nats-server of its own for the restart case.
export const natsEngine: EngineUnderTest = {
  name: 'nats',
  unavailable: async () => (await sharedNatsMissing()) ?? natsBinaryMissing(),
  shared: () => Promise.resolve({ env: natsEnv(SHARED_NATS), close: () => Promise.resolve() }),
  throwaway: async () => {
    const server = await startNatsServer();
    return { env: natsEnv(server.url), stop: server.stop, start: server.start };
  },
  // Claims made through a cluster live in a JetStream bucket named after its prefix: remove it from the shared server.
  cleanup: async (prefix) => {
    const nc = await connect({ servers: SHARED_NATS });
    try {
      const kvm = new Kvm(nc);
      const names: string[] = [];
      for await (const status of kvm.list()) names.push(status.bucket);
      if (names.includes(`${prefix}-claims`)) await (await kvm.open(`${prefix}-claims`)).destroy();
    } finally {
      await nc.close();
    }
  },
};
