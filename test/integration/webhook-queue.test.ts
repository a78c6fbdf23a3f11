import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { after } from 'node:test';
import { Redis } from 'ioredis';
import { webhookQueueSuite } from '../contract/webhook-queue.contract.js';
import { lazyRedisCluster, redisBinariesMissing, sharedNatsMissing, sharedRedisMissing, uniquePrefix } from '../helpers/cluster.js';
import { MemoryWebhookQueue } from '../../src/webhooks/queue-memory.js';
import { NatsWebhookQueue } from '../../src/webhooks/queue-nats.js';
import { RedisWebhookQueue } from '../../src/webhooks/queue-redis.js';

await webhookQueueSuite({
  name: 'memory',
  unavailable: () => Promise.resolve(undefined),
  open: (limits) => {
    const queue = new MemoryWebhookQueue(limits);
    return Promise.resolve({ a: queue, b: queue, close: () => queue.close() });
  },
  emptyWaitMs: 0,
});

// The machine's Redis and NATS, under a prefix of this run's own, removed afterwards.
await webhookQueueSuite({
  name: 'redis',
  unavailable: () => sharedRedisMissing(),
  open: (limits) => {
    const prefix = `${uniquePrefix('whq')}:`;
    const a = new RedisWebhookQueue(new Redis('redis://127.0.0.1:6379'), prefix, limits);
    const b = new RedisWebhookQueue(new Redis('redis://127.0.0.1:6379'), prefix, limits);
    return Promise.resolve({
      a,
      b,
      close: async () => {
        const admin = new Redis('redis://127.0.0.1:6379');
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length > 0) await admin.del(...keys);
        await admin.quit();
        await Promise.all([a.close(), b.close()]);
      },
    });
  },
  emptyWaitMs: 0,
});

// Redis Cluster: a throwaway 3-master cluster; each app's keys share one hash tag, so its scripts run on one shard.
const redisCluster = lazyRedisCluster();
after(() => redisCluster.stop());
await webhookQueueSuite({
  name: 'redis-cluster',
  unavailable: () => Promise.resolve(redisBinariesMissing()),
  open: async (limits) => {
    const prefix = `${uniquePrefix('whq')}:`;
    const a = new RedisWebhookQueue(await redisCluster.client(), prefix, limits);
    const b = new RedisWebhookQueue(await redisCluster.client(), prefix, limits);
    return { a, b, close: () => Promise.all([a.close(), b.close()]).then(() => undefined) };
  },
  emptyWaitMs: 0,
});

await webhookQueueSuite({
  name: 'nats',
  unavailable: () => sharedNatsMissing(),
  open: async (limits) => {
    const prefix = uniquePrefix('whq');
    const a = await NatsWebhookQueue.open(['nats://127.0.0.1:4222'], prefix, limits, 5_000);
    const b = await NatsWebhookQueue.open(['nats://127.0.0.1:4222'], prefix, limits, 5_000);
    return {
      a,
      b,
      close: async () => {
        await Promise.all([a.close(), b.close()]);
        const nc = await connect({ servers: 'nats://127.0.0.1:4222' });
        const jsm = await jetstreamManager(nc);
        for await (const name of jsm.streams.names()) if (name.startsWith(`${prefix}_`)) await jsm.streams.delete(name);
        await nc.close();
      },
    };
  },
  emptyWaitMs: 1_000,
});
