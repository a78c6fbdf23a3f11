import type { Logger } from '../log.js';
import type { ClusterEngine } from './engine.js';

export interface InterestOptions {
  /** Channels hash into this many shards; one engine topic each. The same on every node. */
  readonly shards: number;
  /** A shard without local channels keeps its engine subscription this long (churn costs nothing). */
  readonly graceMs: number;
  /** Bound on how long a subscriber waits for the engine to confirm a new shard. */
  readonly joinTimeoutMs: number;
}

interface Shard {
  /** Channels of this shard with a subscriber on this node. */
  channels: number;
  /** The engine confirmed the subscription. */
  live: boolean;
  joining: Promise<void> | undefined;
  grace: NodeJS.Timeout | undefined;
}

/** A counter of how often interest changed the engine's subscriptions (for tests and metrics). */
export interface InterestCounts {
  joins: number;
  leaves: number;
}

/**
 * Interest routing: the engine subscriptions (one per shard) this node holds because it has
 * subscribers on channels of that shard. The first channel of a shard subscribes, and the
 * caller may wait for the engine's confirmation; later channels of a shard that is live cost
 * nothing. A shard left without channels is dropped after a grace, so reconnect storms and
 * per-user churn do not turn into engine round trips.
 */
export class ShardInterest {
  private readonly shards = new Map<number, Shard>();
  readonly counts: InterestCounts = { joins: 0, leaves: 0 };
  private closed = false;

  constructor(
    private readonly engine: ClusterEngine,
    private readonly options: InterestOptions,
    private readonly log: Logger,
  ) {}

  static topic(shard: number): string {
    return `shard.${shard}`;
  }

  /**
   * A channel of `shard` got its first subscriber here. Undefined when the shard is already live
   * (the common case), else a promise that settles once the engine confirmed it, or after
   * `joinTimeoutMs` (an engine that does not answer must not hold subscribers forever).
   */
  add(shard: number): Promise<void> | undefined {
    let s = this.shards.get(shard);
    if (!s) this.shards.set(shard, (s = { channels: 0, live: false, joining: undefined, grace: undefined }));
    s.channels += 1;
    if (s.grace) {
      clearTimeout(s.grace);
      s.grace = undefined;
    }
    if (s.live) return undefined;
    const joining = (s.joining ??= this.join(shard, s));
    return bounded(joining, this.options.joinTimeoutMs);
  }

  /** A channel of `shard` lost its last subscriber here. */
  remove(shard: number): void {
    const s = this.shards.get(shard);
    if (!s || s.channels === 0) return;
    s.channels -= 1;
    if (s.channels === 0 && !s.joining) this.scheduleLeave(shard, s);
  }

  /** Shards this node is subscribed to (or subscribing to) now. */
  get size(): number {
    return this.shards.size;
  }

  /** Whether this node holds (or is getting) the engine subscription of `shard`. */
  has(shard: number): boolean {
    return this.shards.has(shard);
  }

  /** After an outage: shards whose join failed meanwhile are tried again. */
  retry(): void {
    for (const [shard, s] of this.shards) if (!s.live && !s.joining && s.channels > 0) s.joining = this.join(shard, s);
  }

  close(): void {
    this.closed = true;
    for (const s of this.shards.values()) clearTimeout(s.grace);
    this.shards.clear();
  }

  private join(shard: number, s: Shard): Promise<void> {
    this.counts.joins += 1;
    return this.engine
      .subscribe(ShardInterest.topic(shard))
      .then(
        () => {
          s.live = true;
        },
        (err: unknown) => this.log.warn({ err: (err as Error).message, shard }, 'could not subscribe to a cluster shard; retried after the engine is back'),
      )
      .finally(() => {
        s.joining = undefined;
        if (s.channels === 0 && !this.closed) this.scheduleLeave(shard, s);
      });
  }

  private scheduleLeave(shard: number, s: Shard): void {
    clearTimeout(s.grace);
    s.grace = setTimeout(() => {
      s.grace = undefined;
      if (s.channels > 0 || s.joining || this.shards.get(shard) !== s) return;
      this.shards.delete(shard);
      if (!s.live) return;
      this.counts.leaves += 1;
      this.engine.unsubscribe(ShardInterest.topic(shard)).catch((err: unknown) => this.log.debug({ err: (err as Error).message, shard }, 'cluster shard unsubscribe failed'));
    }, this.options.graceMs);
    s.grace.unref();
  }
}

function bounded(p: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    timer.unref();
    void p.finally(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
