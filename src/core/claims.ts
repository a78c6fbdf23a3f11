import { randomBytes } from 'node:crypto';

/** A single-use ticket to connect as a user (dSock's claims). */
export interface Claim {
  readonly id: string;
  readonly appId: string;
  readonly user: string;
  readonly session?: string | undefined;
  /** Epoch seconds. */
  readonly expiration: number;
  /** Private and presence channels the connection may join (as a JWT's `channels`). */
  readonly channels?: readonly string[] | undefined;
}

export type ClaimTake = { ok: true; claim: Claim } | { ok: false; error: 'MISSING_CLAIM' | 'EXPIRED_CLAIM' };

/**
 * Where claims live. The in-memory store serves one node; a cluster engine provides a shared one
 * so a claim made through any node can be used on any other.
 */
export interface ClaimStore {
  /** False when the id is taken. */
  create(claim: Claim): Promise<boolean>;
  /** Returns the claim and deletes it: a claim is used at most once. */
  take(appId: string, id: string): Promise<ClaimTake>;
  /** Unexpired claims of a user (optionally one session). */
  list(appId: string, user: string, session?: string): Promise<Claim[]>;
  remove(appId: string, user: string, session?: string): Promise<number>;
  close(): Promise<void>;
}

export function newClaimId(): string {
  return randomBytes(24).toString('base64url');
}

export class MemoryClaimStore implements ClaimStore {
  private readonly claims = new Map<string, Claim>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly nowSeconds: () => number = () => Math.floor(Date.now() / 1000)) {
    this.sweep = setInterval(() => {
      const now = this.nowSeconds();
      for (const [key, claim] of this.claims) if (claim.expiration <= now) this.claims.delete(key);
    }, 30_000);
    this.sweep.unref();
  }

  private static key(appId: string, id: string): string {
    return `${appId}\u0000${id}`;
  }

  create(claim: Claim): Promise<boolean> {
    const key = MemoryClaimStore.key(claim.appId, claim.id);
    const existing = this.claims.get(key);
    if (existing && existing.expiration > this.nowSeconds()) return Promise.resolve(false);
    this.claims.set(key, claim);
    return Promise.resolve(true);
  }

  take(appId: string, id: string): Promise<ClaimTake> {
    const key = MemoryClaimStore.key(appId, id);
    const claim = this.claims.get(key);
    if (!claim) return Promise.resolve({ ok: false, error: 'MISSING_CLAIM' });
    this.claims.delete(key);
    if (claim.expiration <= this.nowSeconds()) return Promise.resolve({ ok: false, error: 'EXPIRED_CLAIM' });
    return Promise.resolve({ ok: true, claim });
  }

  list(appId: string, user: string, session?: string): Promise<Claim[]> {
    const now = this.nowSeconds();
    return Promise.resolve(
      [...this.claims.values()].filter(
        (c) => c.appId === appId && c.user === user && (session === undefined || c.session === session) && c.expiration > now,
      ),
    );
  }

  async remove(appId: string, user: string, session?: string): Promise<number> {
    const doomed = await this.list(appId, user, session);
    for (const c of doomed) this.claims.delete(MemoryClaimStore.key(appId, c.id));
    return doomed.length;
  }

  close(): Promise<void> {
    clearInterval(this.sweep);
    return Promise.resolve();
  }
}
