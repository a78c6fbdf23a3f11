import { Cluster } from 'ioredis';
import { BoundedRedis } from '../cluster/bounded-redis.js';
import { redisClusterNodes } from '../cluster/create.js';
import { EngineStartError } from '../cluster/health.js';
import type { Config } from '../config/schema.js';
import { NatsWebhookQueue } from './queue-nats.js';
import { RedisWebhookQueue } from './queue-redis.js';
import type { QueueLimits, WebhookQueue } from './queue.js';

/** A queue command that waits longer than this fails: the event is counted lost (push) or taken again later. */
const COMMAND_TIMEOUT_MS = 2_000;

export function queueLimits(config: Config): QueueLimits {
  return {
    maxEntries: config.webhookQueueMaxEntries,
    maxBytes: config.webhookQueueMaxBytes,
    maxDeadLetters: config.webhookDeadLetterMax,
    leaseMs: config.webhookQueueLeaseMs,
  };
}

/** The shared webhook queue `config.webhookQueue` names, connected; undefined for `memory`. */
export async function createWebhookQueue(config: Config): Promise<WebhookQueue | undefined> {
  try {
    return await connectQueue(config);
  } catch (err) {
    throw new EngineStartError(`the webhook queue (${config.webhookQueue}) is not reachable: ${(err as Error).message}`, { cause: err });
  }
}

async function connectQueue(config: Config): Promise<WebhookQueue | undefined> {
  const limits = queueLimits(config);
  switch (config.webhookQueue) {
    case 'memory':
      return undefined;
    case 'redis': {
      // Commands wait for a reconnect at most COMMAND_TIMEOUT_MS (then fail), so the client's
      // queue of commands stays bounded by what arrives in that time.
      const options = { maxRetriesPerRequest: 1, commandTimeout: COMMAND_TIMEOUT_MS, lazyConnect: true };
      const client =
        config.adapter === 'redis-cluster'
          ? new Cluster(redisClusterNodes(config), { lazyConnect: true, redisOptions: options })
          : new BoundedRedis(config.redisUrl, options); // bounded while Redis is down or frozen
      client.on('error', () => undefined); // each failed command reports itself; the client reconnects
      try {
        await withDeadline(client.connect(), config.startTimeoutMs, `Redis did not answer within ${config.startTimeoutMs} ms (startTimeoutMs)`);
      } catch (err) {
        client.disconnect();
        throw err;
      }
      return new RedisWebhookQueue(client, `${config.clusterPrefix}:`, limits);
    }
    case 'nats':
      return NatsWebhookQueue.open(config.natsUrl, config.clusterPrefix, limits, config.startTimeoutMs);
  }
}

async function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
