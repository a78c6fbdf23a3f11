import type { Cluster, Redis } from 'ioredis';
import type { RateLimiter } from '../core/window-rate-limiter.js';

/** One-second windows counted in Redis, so every node sees the same count. */
export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {}

  async consume(key: string, perSecond: number): Promise<boolean> {
    const name = `${this.prefix}rl:${key}:${Math.floor(this.now() / 1000)}`;
    try {
      const count = await this.redis.incr(name);
      if (count === 1) await this.redis.pexpire(name, 2_000);
      return count <= perSecond;
    } catch {
      // Redis away: do not refuse traffic because the counter is unreachable.
      return true;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
