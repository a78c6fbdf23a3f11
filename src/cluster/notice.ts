import { randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.js';
import { redisClusterNodes } from './create.js';
import { encodeWire } from './messages.js';

/** The control topic, as ClusterBus names it (every node subscribes to it). */
const CONTROL = 'control';

/**
 * Tells the running nodes of the cluster `config` names that an app changed, as the admin API
 * does, so they re-read it at once rather than within appCacheTtlMs. For a process outside the
 * cluster (the `switchboard apps` CLI): one message on the control topic, sent as a notice, so
 * no node counts the sender as a node. Resolves false when there is no cluster engine
 * (`adapter: local`); rejects when the engine cannot be reached within startTimeoutMs.
 */
export async function noticeAppChanged(config: Config, appId: string): Promise<boolean> {
  const bytes = encodeWire(`cli-${randomUUID()}`, { t: 'notice', c: { kind: 'app-changed', appId } });
  const prefix = config.clusterPrefix;
  switch (config.adapter) {
    case 'local':
      return false;
    case 'redis': {
      const { Redis } = await import('ioredis');
      const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: config.startTimeoutMs, retryStrategy: () => null });
      redis.on('error', () => undefined); // the failed command says it
      try {
        await redis.connect();
        await redis.publish(`${prefix}:${CONTROL}`, bytes);
      } finally {
        redis.disconnect();
      }
      return true;
    }
    case 'redis-cluster': {
      const { Cluster } = await import('ioredis');
      const cluster = new Cluster(redisClusterNodes(config), { lazyConnect: true, clusterRetryStrategy: () => null, redisOptions: { maxRetriesPerRequest: 0, connectTimeout: config.startTimeoutMs } });
      cluster.on('error', () => undefined);
      try {
        await cluster.connect();
        // The engine's channel carries its topic as a hash tag (sharded pub/sub).
        await cluster.spublish(`${prefix}:{${CONTROL}}`, bytes);
      } finally {
        cluster.disconnect();
      }
      return true;
    }
    case 'nats': {
      const { connect } = await import('@nats-io/transport-node');
      const nc = await connect({ servers: config.natsUrl, timeout: config.startTimeoutMs, reconnect: false, name: 'switchboard-cli' });
      try {
        nc.publish(`${prefix}.${CONTROL}`, bytes);
        await nc.flush();
      } finally {
        await nc.close();
      }
      return true;
    }
  }
}
