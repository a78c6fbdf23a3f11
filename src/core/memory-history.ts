import { randomBytes } from 'node:crypto';
import { pageOf, type HistoryEntry, type HistoryLimits, type HistoryMessage, type HistoryPage, type HistoryStore, type Position } from './history.js';

interface ChannelHistory {
  readonly epoch: string;
  top: number;
  messages: HistoryMessage[];
  /** When the newest message ages out: the whole channel history goes then. */
  expiresAt: number;
}

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

/** History of one node (the `local` engine): bounded per channel by count and age. */
export class MemoryHistoryStore implements HistoryStore {
  readonly ordersAppends = true;
  private readonly channels = new Map<string, ChannelHistory>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweep = setInterval(() => this.sweepExpired(), 30_000);
    this.sweep.unref();
  }

  private live(key: string): ChannelHistory | undefined {
    const h = this.channels.get(key);
    if (h && h.expiresAt <= this.now()) {
      this.channels.delete(key);
      return undefined;
    }
    return h;
  }

  /**
   * The channel's history, begun (empty, in a new epoch) when it has none: a read begins it too,
   * so a subscriber that saw an empty channel resumes in the epoch its first message will get.
   */
  private ensure(key: string, limits: HistoryLimits): ChannelHistory {
    let h = this.live(key);
    if (!h) {
      h = { epoch: newEpoch(), top: 0, messages: [], expiresAt: this.now() + limits.ttlSeconds * 1000 };
      this.channels.set(key, h);
    }
    return h;
  }

  append(appId: string, channel: string, entry: HistoryEntry, limits: HistoryLimits): Promise<Position> {
    const at = this.now();
    const h = this.ensure(`${appId}\u0000${channel}`, limits);
    h.top += 1;
    h.messages.push({ ...entry, offset: h.top, at });
    if (h.messages.length > limits.size * 2) h.messages = h.messages.slice(-limits.size); // amortised trim
    h.expiresAt = at + limits.ttlSeconds * 1000;
    return Promise.resolve({ epoch: h.epoch, offset: h.top });
  }

  read(appId: string, channel: string, after: number | undefined, limit: number, limits: HistoryLimits, newest = false): Promise<HistoryPage> {
    const h = this.ensure(`${appId}\u0000${channel}`, limits);
    const cutoff = this.now() - limits.ttlSeconds * 1000;
    const kept = h.messages.slice(-limits.size).filter((m) => m.at > cutoff);
    return Promise.resolve(pageOf(h.epoch, h.top, kept, after, limit, newest));
  }

  /** Messages held over all channels (what the count bound keeps small). */
  get held(): number {
    let n = 0;
    for (const h of this.channels.values()) n += h.messages.length;
    return n;
  }

  /** Drops the channels whose newest message aged out (every 30 s on its own). */
  sweepExpired(): void {
    const t = this.now();
    for (const [key, h] of this.channels) if (h.expiresAt <= t) this.channels.delete(key);
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    return Promise.resolve();
  }
}
