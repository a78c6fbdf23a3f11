import { createHmac, timingSafeEqual } from 'node:crypto';

export function hmacSha256Hex(secret: string, message: string | Buffer): string {
  return createHmac('sha256', secret).update(message).digest('hex');
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Whether `signature` is the lowercase hex HMAC-SHA256 of `message`, compared in constant time.
 * Compares digest bytes: no hex string of our own and no buffers made from strings, which
 * showed in the REST API's profile.
 */
export function hmacSha256HexMatches(secret: string, message: string, signature: string): boolean {
  if (!SHA256_HEX.test(signature)) return false;
  return timingSafeEqual(createHmac('sha256', secret).update(message).digest(), Buffer.from(signature, 'hex'));
}

/** Constant-time string comparison; unequal lengths fail without comparing. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
