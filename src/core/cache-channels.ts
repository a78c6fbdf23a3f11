import type { AppState, CacheEntry } from './app-state.js';
import type { HubContext } from './hub-context.js';
import type { ChannelMessage } from './message.js';

const CACHE_SWEEP_INTERVAL_MS = 60_000;
const CACHE_MISS_REPORT_MS = 60_000;
/**
 * Channels whose cache miss was reported lately, per app. Any client can name new cache
 * channels, so the record is bounded: past it the oldest entry goes (that channel may report
 * again sooner), rather than memory growing with every name tried.
 */
const MAX_CACHE_MISSES_TRACKED = 10_000;

/** Cache channels: the last server event per channel (with its TTL), cache_miss reports, the sweep of expired entries. */
export class CacheChannels {
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: HubContext) {}

  start(): void {
    // Expired cache entries of channels nobody reads again would otherwise stay forever.
    this.sweepTimer = setInterval(() => this.sweep(), CACHE_SWEEP_INTERVAL_MS);
    this.sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }

  sweep(): void {
    const now = this.ctx.now();
    for (const app of this.ctx.apps.values()) {
      for (const [name, entry] of app.cache) if (entry.expiresAt <= now) app.cache.delete(name);
      for (const [name, at] of app.cacheMissReported) if (now - at >= CACHE_MISS_REPORT_MS) app.cacheMissReported.delete(name);
    }
  }

  /** Keeps a server event of a cache channel as the channel's last one. */
  store(appId: string, message: ChannelMessage): void {
    const app = this.ctx.appById(appId);
    if (!app) return;
    const s = this.ctx.apps.of(appId);
    s.cache.set(message.channel, { message, expiresAt: this.ctx.now() + app.cacheTtlSeconds * 1000 });
    s.cacheMissReported.delete(message.channel);
  }

  /** Takes another node's entry when it outlives this node's own. */
  storeRemote(s: AppState, message: ChannelMessage, expiresAt: number): void {
    const mine = s.cache.get(message.channel);
    if ((!mine || mine.expiresAt < expiresAt) && expiresAt > this.ctx.now()) s.cache.set(message.channel, { message, expiresAt });
  }

  /** What a subscriber of a cache channel gets: the last event, or null (and a cache_miss report) for none. */
  forSubscriber(s: AppState, appId: string, channel: string): ChannelMessage | null {
    const cached = this.entry(s, channel)?.message ?? null;
    if (cached === null) this.reportMiss(s, appId, channel);
    return cached;
  }

  /** The live entry of a channel; an expired one is dropped on the way. */
  entry(s: AppState, name: string): CacheEntry | undefined {
    const entry = s.cache.get(name);
    if (entry && entry.expiresAt <= this.ctx.now()) {
      s.cache.delete(name);
      return undefined;
    }
    return entry;
  }

  /** Seconds left to a live entry, rounded up. */
  ttlSeconds(entry: CacheEntry): number {
    return Math.max(0, Math.ceil((entry.expiresAt - this.ctx.now()) / 1000));
  }

  /** One cache_miss webhook per channel per `CACHE_MISS_REPORT_MS`, not one per subscriber. */
  private reportMiss(s: AppState, appId: string, channel: string): void {
    const now = this.ctx.now();
    const last = s.cacheMissReported.get(channel);
    if (last !== undefined && now - last < CACHE_MISS_REPORT_MS) return;
    if (last === undefined && s.cacheMissReported.size >= MAX_CACHE_MISSES_TRACKED) {
      const oldest = s.cacheMissReported.keys().next().value;
      if (oldest !== undefined) s.cacheMissReported.delete(oldest);
    }
    s.cacheMissReported.delete(channel); // re-inserted at the end: the map stays in report order
    s.cacheMissReported.set(channel, now);
    this.ctx.onEvent(appId, { name: 'cache_miss', channel });
  }
}
