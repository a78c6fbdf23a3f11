/**
 * Fixed one-second windows per key. The in-memory limiter counts on this node; the Redis one
 * (cluster/) counts over the cluster. Both answer "does one more fit in this second?".
 */
export interface RateLimiter {
  consume(key: string, perSecond: number): Promise<boolean>;
  close(): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, { second: number; count: number }>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    // Keys of clients that went away would otherwise stay forever.
    this.sweep = setInterval(() => {
      const second = Math.floor(this.now() / 1000);
      for (const [key, w] of this.windows) if (w.second < second) this.windows.delete(key);
    }, 5_000);
    this.sweep.unref();
  }

  consume(key: string, perSecond: number): Promise<boolean> {
    const second = Math.floor(this.now() / 1000);
    let w = this.windows.get(key);
    if (!w || w.second !== second) this.windows.set(key, (w = { second, count: 0 }));
    w.count += 1;
    return Promise.resolve(w.count <= perSecond);
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    return Promise.resolve();
  }
}
