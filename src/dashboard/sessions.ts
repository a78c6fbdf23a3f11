import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** Cookie name of a dashboard session. */
export const SESSION_COOKIE = 'sb_dashboard';

/**
 * Dashboard sign-ins: the credential check and stateless session cookies
 * (`expiry.nonce.hmac`). The credentials are the dashboard password and the admin token, either
 * of which signs in. The signing key is derived from them, so every node of a cluster with the
 * same settings accepts the same cookie, and changing either signs everybody out.
 */
export class DashboardSessions {
  private readonly key: Buffer;
  private readonly digests: readonly Buffer[];

  constructor(
    credentials: readonly string[],
    private readonly lifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {
    if (credentials.length === 0) throw new Error('the dashboard needs a password or an admin token');
    this.key = createHmac('sha256', credentials.join('\0')).update('switchboard dashboard session key').digest();
    this.digests = credentials.map(digest);
  }

  /** Constant time: digests of equal length are compared, every one of them, so the time says nothing about either. */
  credentialMatches(candidate: string): boolean {
    const given = digest(candidate);
    let matched = false;
    for (const d of this.digests) matched = timingSafeEqual(given, d) || matched;
    return matched;
  }

  /** A new session's cookie value. */
  issue(): string {
    const body = `${this.now() + this.lifetimeMs}.${randomBytes(16).toString('base64url')}`;
    return `${body}.${this.mac(body)}`;
  }

  get lifetimeSeconds(): number {
    return Math.floor(this.lifetimeMs / 1000);
  }

  valid(value: string | undefined): boolean {
    if (!value) return false;
    const dot = value.lastIndexOf('.');
    if (dot < 0) return false;
    const body = value.slice(0, dot);
    const mac = Buffer.from(value.slice(dot + 1), 'base64url');
    const expected = Buffer.from(this.mac(body), 'base64url');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return false;
    const expiresAt = Number(body.slice(0, body.indexOf('.')));
    return Number.isFinite(expiresAt) && expiresAt > this.now();
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The value of one cookie of a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Sign-in attempts per client address: `limit` per window, a fixed window each. The map is
 * bounded: when full, the oldest windows go (they are the ones closest to expiring anyway).
 */
export class LoginLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts an attempt; false when the address is over its limit. */
  attempt(address: string): boolean {
    const now = this.now();
    let w = this.windows.get(address);
    if (!w || now - w.start >= this.windowMs) {
      this.windows.delete(address);
      if (this.windows.size >= this.maxAddresses) this.windows.delete(this.windows.keys().next().value as string);
      w = { start: now, count: 0 };
      this.windows.set(address, w);
    }
    w.count += 1;
    return w.count <= this.limit;
  }
}
