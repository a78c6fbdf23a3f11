import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { NatsHistoryStore } from '../../src/cluster/nats-history.js';
import { RedisHistoryStore } from '../../src/cluster/redis-history.js';
import { MemoryHistoryStore } from '../../src/core/memory-history.js';
import { historySuite } from '../contract/history.contract.js';
import { redisBinariesMissing, sharedNatsMissing, lazyRedisCluster, sharedRedisMissing, uniquePrefix } from '../helpers/cluster.js';

await historySuite({
  name: 'memory',
  unavailable: () => Promise.resolve(undefined),
  // One node only: every "node" of the local engine is the same store.
  open: (() => {
    let shared: MemoryHistoryStore | undefined;
    return (now: () => number) => Promise.resolve((shared ??= new MemoryHistoryStore(now)));
  })(),
});

const redisPrefix = `${uniquePrefix('hist')}:`;
await historySuite({
  name: 'redis',
  unavailable: () => sharedRedisMissing(),
  open: (now) => Promise.resolve(new RedisHistoryStore(new Redis('redis://127.0.0.1:6379', { lazyConnect: false }), redisPrefix, now)),
});

const stream = uniquePrefix('hist').replace(/[^A-Za-z0-9_-]/g, '_');
const connections: NatsConnection[] = [];
await historySuite({
  name: 'nats',
  unavailable: () => sharedNatsMissing(),
  open: async (now) => {
    const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    connections.push(nc);
    return NatsHistoryStore.open(nc, stream, { size: 100, ttlSeconds: 3600 }, now);
  },
  cleanup: async () => {
    await (await jetstreamManager(connections[0])).streams.delete(stream).catch(() => undefined);
    for (const nc of connections) await nc.close();
  },
});

// Redis Cluster: a channel's keys share a hash tag, so its atomic append runs on one shard.
const redisCluster = lazyRedisCluster();
await historySuite({
  name: 'redis-cluster',
  unavailable: () => Promise.resolve(redisBinariesMissing()),
  open: async (now) => new RedisHistoryStore(await redisCluster.client(), redisPrefix, now),
  cleanup: () => redisCluster.stop(),
});
