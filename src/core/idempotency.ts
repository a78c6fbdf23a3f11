/**
 * Idempotent publishing: a publish that names a key is delivered only if no publish of the same
 * app named that key within the window. The store is the engine's (memory, Redis, JetStream),
 * so a retry that lands on another node is recognised too.
 */
export interface IdempotencyStore {
  /**
   * Records `key` for the store's window (the server's `idempotencyWindowSeconds`). True when it was free (publish now); false when a publish with
   * this key was already accepted within the window (acknowledge, do not deliver). Rejects when
   * the store cannot be reached: the caller must not deliver then, or a retry could repeat it.
   */
  claim(appId: string, key: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Longest idempotency key accepted (Sockudo and Ably take ids of this order). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256;

/** A reason the key is unusable, or undefined when it is fine: a non-empty printable ASCII string. */
export function idempotencyKeyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string' || key.length === 0) return 'must be a non-empty string';
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) return `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`;
  if (!/^[\x21-\x7e]+$/.test(key)) return 'must be printable ASCII without spaces';
  return undefined;
}

/**
 * The keys of one node (the `local` engine). Every key lives as long as the same window, so the
 * Map's insertion order is expiry order: expired keys are dropped from the front. Bounded: past
 * `maxKeys` live keys the oldest go first (a retry that late is then delivered again).
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly expiries = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 1_000_000,
  ) {}

  claim(appId: string, key: string): Promise<boolean> {
    const t = this.now();
    for (const [k, expiresAt] of this.expiries) {
      if (expiresAt > t && this.expiries.size < this.maxKeys) break;
      this.expiries.delete(k);
    }
    const id = `${appId}\u0000${key}`;
    const expiresAt = this.expiries.get(id);
    if (expiresAt !== undefined && expiresAt > t) return Promise.resolve(false);
    this.expiries.delete(id); // re-inserted at the end, where its new expiry belongs
    this.expiries.set(id, t + this.windowMs);
    return Promise.resolve(true);
  }

  /** Keys held (for the bound's test). */
  get size(): number {
    return this.expiries.size;
  }

  close(): Promise<void> {
    this.expiries.clear();
    return Promise.resolve();
  }
}
