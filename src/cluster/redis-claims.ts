import type { Cluster, Redis } from 'ioredis';
import type { Claim, ClaimStore, ClaimTake } from '../core/claims.js';

/**
 * Claims in Redis, so one made through any node is usable on every node: SET NX creates,
 * GETDEL takes (at most once, atomically), keys expire with the claim.
 */
export class RedisClaimStore implements ClaimStore {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  private key(appId: string, id: string): string {
    return `${this.prefix}claim:${appId}:${id}`;
  }

  private index(appId: string, user: string): string {
    return `${this.prefix}claims:${appId}:${user}`;
  }

  async create(claim: Claim): Promise<boolean> {
    // A claim that is already expired still exists briefly, so using it says EXPIRED_CLAIM.
    const ttlMs = Math.max(1000, (claim.expiration - this.nowSeconds()) * 1000);
    const ok = await this.redis.set(this.key(claim.appId, claim.id), JSON.stringify(claim), 'PX', ttlMs, 'NX');
    if (ok !== 'OK') return false;
    const index = this.index(claim.appId, claim.user);
    await this.redis.sadd(index, claim.id);
    await this.redis.pexpire(index, ttlMs, 'GT');
    await this.redis.pexpire(index, ttlMs, 'NX');
    return true;
  }

  async take(appId: string, id: string): Promise<ClaimTake> {
    const raw = await this.redis.getdel(this.key(appId, id));
    if (raw === null) return { ok: false, error: 'MISSING_CLAIM' };
    const claim = JSON.parse(raw) as Claim;
    await this.redis.srem(this.index(appId, claim.user), id);
    if (claim.expiration <= this.nowSeconds()) return { ok: false, error: 'EXPIRED_CLAIM' };
    return { ok: true, claim };
  }

  async list(appId: string, user: string, session?: string): Promise<Claim[]> {
    const index = this.index(appId, user);
    const ids = await this.redis.smembers(index);
    const now = this.nowSeconds();
    const out: Claim[] = [];
    for (const id of ids) {
      const raw = await this.redis.get(this.key(appId, id));
      if (raw === null) {
        await this.redis.srem(index, id);
        continue;
      }
      const claim = JSON.parse(raw) as Claim;
      if (claim.expiration > now && (session === undefined || claim.session === session)) out.push(claim);
    }
    return out;
  }

  async remove(appId: string, user: string, session?: string): Promise<number> {
    const doomed = await this.list(appId, user, session);
    for (const claim of doomed) {
      await this.redis.del(this.key(appId, claim.id));
      await this.redis.srem(this.index(appId, user), claim.id);
    }
    return doomed.length;
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
    // quit fails at once while Redis is unreachable (no offline queue); without this the client would keep reconnecting and hold the process open.
    this.redis.disconnect();
  }
}
