import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Claim, ClaimStore, ClaimTake } from '../core/claims.js';

/**
 * Claims in a JetStream key-value bucket: `create` fails on an existing key, and taking is a
 * delete conditioned on the revision that was read, so two nodes cannot both use one claim.
 */
export class NatsClaimStore implements ClaimStore {
  private constructor(
    private readonly kv: KV,
    private readonly nowSeconds: () => number,
  ) {}

  static async open(nc: NatsConnection, bucket: string, nowSeconds: () => number = () => Math.floor(Date.now() / 1000)): Promise<NatsClaimStore> {
    // Entries outlive any sensible claim; the value's own expiration is what counts.
    const kv = await new Kvm(nc).create(bucket, { ttl: 24 * 60 * 60 * 1000, history: 1 });
    return new NatsClaimStore(kv, nowSeconds);
  }

  private static key(appId: string, id: string): string {
    return `${Buffer.from(appId).toString('base64url')}.${Buffer.from(id).toString('base64url')}`;
  }

  async create(claim: Claim): Promise<boolean> {
    const key = NatsClaimStore.key(claim.appId, claim.id);
    const existing = await this.kv.get(key);
    if (existing && existing.operation === 'PUT' && existing.json<Claim>().expiration > this.nowSeconds()) return false;
    try {
      if (existing && existing.operation === 'PUT') await this.kv.put(key, JSON.stringify(claim), { previousSeq: existing.revision });
      else await this.kv.create(key, JSON.stringify(claim));
      return true;
    } catch {
      return false;
    }
  }

  async take(appId: string, id: string): Promise<ClaimTake> {
    const key = NatsClaimStore.key(appId, id);
    const entry = await this.kv.get(key);
    if (!entry || entry.operation !== 'PUT') return { ok: false, error: 'MISSING_CLAIM' };
    try {
      await this.kv.delete(key, { previousSeq: entry.revision });
    } catch {
      return { ok: false, error: 'MISSING_CLAIM' }; // another node took it first
    }
    const claim = entry.json<Claim>();
    if (claim.expiration <= this.nowSeconds()) return { ok: false, error: 'EXPIRED_CLAIM' };
    return { ok: true, claim };
  }

  async list(appId: string, user: string, session?: string): Promise<Claim[]> {
    const now = this.nowSeconds();
    const out: Claim[] = [];
    const keys = await this.kv.keys(`${Buffer.from(appId).toString('base64url')}.*`);
    for await (const key of keys) {
      const entry = await this.kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      const claim = entry.json<Claim>();
      if (claim.user === user && (session === undefined || claim.session === session) && claim.expiration > now) out.push(claim);
    }
    return out;
  }

  async remove(appId: string, user: string, session?: string): Promise<number> {
    const doomed = await this.list(appId, user, session);
    for (const claim of doomed) await this.kv.delete(NatsClaimStore.key(appId, claim.id));
    return doomed.length;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
