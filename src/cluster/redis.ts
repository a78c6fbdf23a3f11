import { Cluster, Redis, type ClusterNode } from 'ioredis';
import type { Logger } from '../log.js';
import type { ClusterEngine, EngineHandlers } from './engine.js';

/**
 * Redis pub/sub. One connection publishes, one subscribes; ioredis reconnects and resubscribes
 * by itself. The publisher has no offline queue, so nothing sent during an outage is replayed
 * late (delivery stays at most once).
 */
export class RedisEngine implements ClusterEngine {
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

  async start(topics: readonly string[], handlers: EngineHandlers): Promise<void> {
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

  async subscribe(topic: string): Promise<void> {
    // ioredis keeps the set of subscribed channels and restores it after a reconnect.
    await this.sub.subscribe(this.prefix + topic);
  }

  async unsubscribe(topic: string): Promise<void> {
    await this.sub.unsubscribe(this.prefix + topic);
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

const SUBSCRIBE_TIMEOUT_MS = 5000;

/**
 * Redis Cluster with sharded pub/sub (Redis 7 SPUBLISH/SSUBSCRIBE): each topic carries its own
 * hash tag, so topics land on different shards and traffic spreads over the cluster.
 *
 * The subscriber is a fresh client after every outage rather than one left to reconnect by
 * itself: ioredis' sharded subscriber group can wedge when the whole cluster goes away (a reset
 * waits on connections it has stopped itself), and then reports ready while it receives nothing.
 */
export class RedisClusterEngine implements ClusterEngine {
  readonly name = 'redis-cluster';
  private readonly pub: Cluster;
  private sub: Cluster | undefined;
  private subscribed = false;
  private up = true;
  private closing = false;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private resubscribeAttempts = 0;
  /** Every topic this node wants: the fixed ones and those added since; a rebuilt subscriber takes them all. */
  private readonly topics = new Set<string>();
  private handlers: EngineHandlers | undefined;

  constructor(
    private readonly nodes: ClusterNode[],
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    const clusterRetryStrategy = (n: number): number => Math.min(n * 100, 2000);
    // A publish that fails is dropped rather than retried after a delay: a delayed retry would
    // arrive after messages published later (out of order), or replay a stale one after an outage.
    const noLateRetries = { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, retryDelayOnTryAgain: 0 };
    this.pub = new Cluster(nodes, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy, ...noLateRetries, redisOptions: { maxRetriesPerRequest: 1 } });
    this.pub.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis cluster error'));
  }

  private channel(topic: string): string {
    return `${this.prefix}{${topic}}`;
  }

  async start(topics: readonly string[], handlers: EngineHandlers): Promise<void> {
    for (const topic of topics) this.topics.add(topic);
    this.handlers = handlers;
    await this.pub.connect();
    await this.connectPublisherToMasters();
    await this.openSubscriber();
    this.pub.on('ready', () => {
      this.connectPublisherToMasters()
        .catch((err: Error) => this.log.debug({ err: err.message }, 'redis cluster publisher warm-up failed'))
        .finally(() => this.report());
    });
    this.pub.on('close', () => this.report());
  }

  private report(): void {
    const now = this.pub.status === 'ready' && this.subscribed;
    if (now === this.up || this.closing) return;
    this.up = now;
    this.handlers?.status(now);
  }

  /** A new subscriber client, subscribed to every topic; resolves once each SSUBSCRIBE is acknowledged. */
  private async openSubscriber(): Promise<void> {
    const sub = new Cluster(this.nodes, { lazyConnect: true, shardedSubscribers: true, clusterRetryStrategy: () => null });
    this.sub = sub;
    sub.on('error', (err: Error) => this.log.debug({ err: err.message }, 'redis cluster subscriber error'));
    const prefixLength = this.prefix.length;
    sub.on('smessageBuffer', (channel: Buffer, message: Buffer) => {
      if (this.sub === sub) this.handlers?.message(channel.toString().slice(prefixLength + 1, -1), message);
    });
    const subscribing = (async () => {
      await sub.connect();
      // One SSUBSCRIBE per topic: topics hash to different slots on purpose.
      for (const topic of [...this.topics]) await sub.ssubscribe(this.channel(topic));
    })();
    let timer: NodeJS.Timeout | undefined;
    // A command queued on a subscriber connection that ioredis then drops may never settle: bound the wait.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`not subscribed after ${SUBSCRIBE_TIMEOUT_MS} ms`)), SUBSCRIBE_TIMEOUT_MS);
    });
    try {
      await Promise.race([subscribing, timeout]);
    } catch (err) {
      subscribing.catch(() => undefined);
      if (this.sub === sub) this.sub = undefined;
      sub.disconnect();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    sub.once('end', () => {
      if (this.sub !== sub || this.closing) return;
      this.subscribed = false;
      this.report();
      this.scheduleResubscribe();
    });
    this.subscribed = true;
    this.resubscribeAttempts = 0;
  }

  private scheduleResubscribe(): void {
    if (this.closing || this.resubscribeTimer) return;
    this.resubscribeAttempts += 1;
    this.resubscribeTimer = setTimeout(() => {
      this.resubscribeTimer = undefined;
      this.openSubscriber().then(
        () => this.report(),
        (err: Error) => {
          this.log.debug({ err: err.message }, 'redis cluster resubscribe failed; retrying');
          this.scheduleResubscribe();
        },
      );
    }, Math.min(this.resubscribeAttempts * 100, 2000));
    this.resubscribeTimer.unref();
  }

  /**
   * The cluster client opens its connection to each master on first use, and (without an offline
   * queue) refuses commands while that connection is still opening; so open them all up front,
   * or the first messages of a topic would be dropped.
   */
  private async connectPublisherToMasters(): Promise<void> {
    await Promise.all(this.pub.nodes('master').map((node) => node.ping()));
  }

  async subscribe(topic: string): Promise<void> {
    this.topics.add(topic);
    // While the subscriber is being rebuilt, the rebuild takes the topic with the others.
    if (this.sub && this.subscribed) await this.sub.ssubscribe(this.channel(topic));
  }

  async unsubscribe(topic: string): Promise<void> {
    this.topics.delete(topic);
    if (this.sub && this.subscribed) await this.sub.sunsubscribe(this.channel(topic));
  }

  publish(topic: string, bytes: Buffer): void {
    if (this.pub.status !== 'ready') return;
    this.pub.spublish(this.channel(topic), bytes).catch((err: Error) => this.log.debug({ err: err.message }, 'redis cluster publish failed'));
  }

  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.resubscribeTimer);
    const sub = this.sub;
    this.sub = undefined;
    await Promise.allSettled([this.pub.quit(), sub?.quit()]);
    this.pub.disconnect();
    sub?.disconnect();
  }
}
