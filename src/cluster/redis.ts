import { Cluster, Redis, type ClusterNode } from 'ioredis';
import type { Logger } from '../log.js';
import type { ClusterTransport, TransportHandlers } from './transport.js';

/**
 * Redis pub/sub. One connection publishes, one subscribes; ioredis reconnects and resubscribes
 * by itself. The publisher has no offline queue, so nothing sent during an outage is replayed
 * late (delivery stays at most once).
 */
export class RedisTransport implements ClusterTransport {
  readonly name = 'redis';
  private readonly pub: Redis;
  private readonly sub: Redis;
  private closing = false;

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    const options = { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(n * 100, 2000) };
    this.pub = new Redis(url, { ...options, enableOfflineQueue: false });
    this.sub = new Redis(url, options);
    for (const client of [this.pub, this.sub]) client.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis error'));
  }

  async start(topics: readonly string[], handlers: TransportHandlers): Promise<void> {
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => handlers.message(channel.toString().slice(this.prefix.length), message));
    await Promise.all([this.pub.connect(), this.sub.connect()]);
    await this.sub.subscribe(...topics.map((t) => this.prefix + t));
    let up = true;
    const report = (now: boolean): void => {
      if (now === up || this.closing) return;
      up = now;
      handlers.status(now);
    };
    // 'ready' on the subscriber comes after ioredis has resubscribed.
    this.sub.on('ready', () => report(this.pub.status === 'ready'));
    this.pub.on('ready', () => report(this.sub.status === 'ready'));
    this.sub.on('close', () => report(false));
    this.pub.on('close', () => report(false));
  }

  publish(topic: string, bytes: Buffer): void {
    if (this.pub.status !== 'ready') return;
    this.pub.publish(this.prefix + topic, bytes).catch((err: Error) => this.log.debug({ err: err.message }, 'redis publish failed'));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
    this.pub.disconnect();
    this.sub.disconnect();
  }
}

/**
 * Redis Cluster with sharded pub/sub (Redis 7 SPUBLISH/SSUBSCRIBE): each topic carries its own
 * hash tag, so topics land on different shards and traffic spreads over the cluster.
 */
export class RedisClusterTransport implements ClusterTransport {
  readonly name = 'redis-cluster';
  private readonly pub: Cluster;
  private readonly sub: Cluster;
  private closing = false;

  constructor(
    nodes: ClusterNode[],
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    const clusterRetryStrategy = (n: number): number => Math.min(n * 100, 2000);
    // A publish that fails is dropped rather than retried after a delay: a delayed retry would
    // arrive after messages published later (out of order), or replay a stale one after an outage.
    const noLateRetries = { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, retryDelayOnTryAgain: 0 };
    this.pub = new Cluster(nodes, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy, ...noLateRetries, redisOptions: { maxRetriesPerRequest: 1 } });
    this.sub = new Cluster(nodes, { lazyConnect: true, shardedSubscribers: true, clusterRetryStrategy });
    for (const client of [this.pub, this.sub]) client.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis cluster error'));
  }

  private channel(topic: string): string {
    return `${this.prefix}{${topic}}`;
  }

  async start(topics: readonly string[], handlers: TransportHandlers): Promise<void> {
    const prefixLength = this.prefix.length;
    this.sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
      const name = channel.toString();
      handlers.message(name.slice(prefixLength + 1, -1), message);
    });
    await Promise.all([this.pub.connect(), this.sub.connect()]);
    await this.connectPublisherToMasters();
    // One SSUBSCRIBE per topic: topics hash to different slots on purpose.
    for (const topic of topics) await this.sub.ssubscribe(this.channel(topic));
    let up = true;
    const report = (now: boolean): void => {
      if (now === up || this.closing) return;
      up = now;
      handlers.status(now);
    };
    this.sub.on('ready', () => report(this.pub.status === 'ready'));
    this.pub.on('ready', () => {
      this.connectPublisherToMasters()
        .catch((err: Error) => this.log.debug({ err: err.message }, 'redis cluster publisher warm-up failed'))
        .finally(() => report(this.pub.status === 'ready' && this.sub.status === 'ready'));
    });
    this.sub.on('close', () => report(false));
    this.pub.on('close', () => report(false));
  }

  /**
   * The cluster client opens its connection to each master on first use, and (without an offline
   * queue) refuses commands while that connection is still opening; so open them all up front,
   * or the first messages of a topic would be dropped.
   */
  private async connectPublisherToMasters(): Promise<void> {
    await Promise.all(this.pub.nodes('master').map((node) => node.ping()));
  }

  publish(topic: string, bytes: Buffer): void {
    if (this.pub.status !== 'ready') return;
    this.pub.spublish(this.channel(topic), bytes).catch((err: Error) => this.log.debug({ err: err.message }, 'redis cluster publish failed'));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.allSettled([this.pub.quit(), this.sub.quit()]);
    this.pub.disconnect();
    this.sub.disconnect();
  }
}
