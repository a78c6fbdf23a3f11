import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Redis } from 'ioredis';
import { NatsIdempotencyStore } from '../../src/cluster/nats-idempotency.js';
import { RedisIdempotencyStore } from '../../src/cluster/redis-idempotency.js';
import { MemoryIdempotencyStore } from '../../src/core/idempotency.js';
import { idempotencySuite } from '../contract/idempotency.contract.js';
import { redisBinariesMissing, sharedNatsMissing, lazyRedisCluster, sharedRedisMissing, uniquePrefix } from '../helpers/cluster.js';

const sleep = (ms: number): Promise<void> => new Promise<void>((resolve) => setTimeout(resolve, ms));

// The local engine: one node, so every "node" is the same store; its clock is moved.
let clock = Date.now();
const memory = new Map<number, MemoryIdempotencyStore>();
await idempotencySuite({
  name: 'memory',
  unavailable: () => Promise.resolve(undefined),
  open: (windowMs) => {
    let s = memory.get(windowMs);
    if (!s) memory.set(windowMs, (s = new MemoryIdempotencyStore(windowMs, () => clock)));
    return Promise.resolve(s);
  },
  pass: (ms) => {
    clock += ms;
    return Promise.resolve();
  },
});

const redisPrefix = `${uniquePrefix('idem')}:`;
await idempotencySuite({
  name: 'redis',
  unavailable: () => sharedRedisMissing(),
  open: (windowMs) => Promise.resolve(new RedisIdempotencyStore(new Redis('redis://127.0.0.1:6379'), redisPrefix, windowMs)),
  pass: sleep,
});

const bucket = uniquePrefix('idem').replace(/[^A-Za-z0-9_-]/g, '_');
const connections: NatsConnection[] = [];
await idempotencySuite({
  name: 'nats',
  unavailable: () => sharedNatsMissing(),
  open: async (windowMs) => {
    const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
    connections.push(nc);
    // One bucket per window: a bucket's age limit is the window of the stores on it.
    return NatsIdempotencyStore.open(nc, `${bucket}-${windowMs}`, windowMs);
  },
  pass: sleep,
  cleanup: async () => {
    const kvm = new Kvm(connections[0]);
    for (const windowMs of [1_000, 60_000]) await (await kvm.open(`${bucket}-${windowMs}`)).destroy().catch(() => undefined);
    for (const nc of connections) await nc.close();
  },
});

const redisCluster = lazyRedisCluster();
await idempotencySuite({
  name: 'redis-cluster',
  unavailable: () => Promise.resolve(redisBinariesMissing()),
  open: async (windowMs) => new RedisIdempotencyStore(await redisCluster.client(), redisPrefix, windowMs),
  pass: sleep,
  cleanup: () => redisCluster.stop(),
});
