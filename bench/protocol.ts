// What differs between the Pusher protocol and Switchboard's native protocol,
// kept in one place so the client state machine stays protocol-agnostic.

import { SignJWT } from 'jose';

export type ProtocolName = 'pusher' | 'native';

export const PUSHER_EVENT_NAME = 'sb-bench';

/**
 * Every benchmark payload starts with this marker followed by the publish
 * time in µs. It sits inside `data`, so it survives any envelope the server
 * wraps around it (Pusher or native). Padding uses 'x', so it cannot recur.
 */
export const PAYLOAD_MARKER = 'sbb';
const MARKER_BUF = Buffer.from(PAYLOAD_MARKER);

export function pusherPath(appKey: string): string {
  return `/app/${encodeURIComponent(appKey)}?protocol=7&client=bench&version=1.0`;
}

export function pusherSubscribe(channel: string, auth?: string, channelData?: string): string {
  const data: Record<string, string> = { channel };
  if (auth !== undefined) data.auth = auth;
  if (channelData !== undefined) data.channel_data = channelData;
  return JSON.stringify({ event: 'pusher:subscribe', data });
}

export function pusherUnsubscribe(channel: string): string {
  return JSON.stringify({ event: 'pusher:unsubscribe', data: { channel } });
}

export const PUSHER_PONG = JSON.stringify({ event: 'pusher:pong', data: {} });

/** The JWT secret a spawned server gets for `--send` runs (native clients sign in as users with it). */
export const BENCH_JWT_SECRET = 'switchboard-bench-jwt-secret';

/** The user client `index` signs in as in `--send` runs: POST /send?user=… addresses it. */
export function benchUser(index: number): string {
  return `u-${index}`;
}

/** An HS256 JWT naming `user`, as the native protocol takes it (`?jwt=`), good for a day. */
export function nativeUserJwt(secret: string, user: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('1d').sign(new TextEncoder().encode(secret));
}

export function nativeSubscribe(channel: string): string {
  return JSON.stringify({ action: 'subscribe', channel });
}

/** Wall time in µs from CLOCK_MONOTONIC, which all processes on a host share. */
export function nowUs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}

export function makePayload(bytes: number, timestampUs: number): string {
  const head = `${PAYLOAD_MARKER}${Math.round(timestampUs)};`;
  return bytes > head.length ? head + 'x'.repeat(bytes - head.length) : head;
}

/** Index just after the marker in buf[start, end), or -1. */
export function findMarker(buf: Buffer, start: number, end: number): number {
  // Searching from `start` without a bounded view saves two allocations per message. It
  // can only run past this frame when the frame has no marker (a ping, rare on this path),
  // and then stops at the next frame that has one or at the end of the read.
  const at = buf.indexOf(MARKER_BUF, start);
  return at >= 0 && at + MARKER_BUF.length <= end ? at + MARKER_BUF.length : -1;
}

/** Parses the decimal timestamp that follows the marker without allocating. */
export function readTimestamp(buf: Buffer, at: number, end: number): number {
  let v = 0;
  for (let i = at; i < end; i++) {
    const c = buf[i];
    if (c < 0x30 || c > 0x39) break;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/** Cheap substring test on a frame payload, used only off the hot path. */
export function contains(buf: Buffer, start: number, end: number, needle: Buffer): boolean {
  return buf.subarray(start, end).indexOf(needle) >= 0;
}

export const NEEDLES = {
  established: Buffer.from('pusher:connection_established'),
  succeeded: Buffer.from('pusher_internal:subscription_succeeded'),
  error: Buffer.from('pusher:error'),
  subscriptionError: Buffer.from('pusher:subscription_error'),
  ping: Buffer.from('pusher:ping'),
  /** Followed by "added" or "removed". */
  member: Buffer.from('pusher_internal:member_'),
};

/** socket_id sits in a JSON string inside a JSON string, so quotes may be escaped. */
export function extractSocketId(text: string): string | undefined {
  return /socket_id\\*"\s*:\s*\\*"([^"\\]+)/.exec(text)?.[1];
}
