import type { Cluster, Redis } from 'ioredis';
import type { IdempotencyStore } from '../core/idempotency.js';

/** Idempotency keys in Redis or Redis Cluster: one SET NX PX per key, so the first node to set it wins. */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly windowMs: number,
  ) {}

  async claim(appId: string, key: string): Promise<boolean> {
    return (await this.redis.set(`${this.prefix}idem:${appId}:${key}`, '1', 'PX', this.windowMs, 'NX')) === 'OK';
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
    // quit fails at once while Redis is unreachable (no offline queue); without this the client would keep reconnecting and hold the process open.
    this.redis.disconnect();
  }
}
