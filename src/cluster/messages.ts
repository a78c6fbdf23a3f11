import type { ClusterCommand, CommandResult } from '../core/bus.js';
import type { ChannelMessage } from '../core/message.js';
import type { StateDelta } from '../core/state-delta.js';

/**
 * What nodes say to each other, as versioned JSON. A node drops (and counts) messages of a
 * version it does not speak, so nodes of two versions can run side by side during an upgrade.
 */
export const WIRE_VERSION = 1;

export type WireMessage =
  /** A message for subscribers, on the data topic of its channel. */
  | { t: 'pub'; a: string; m: ChannelMessage }
  /** A change in the sender's share of the state; with `r`, its whole share (a snapshot). */
  | { t: 'state'; d: StateDelta[]; r?: true; to?: string }
  | { t: 'hb' }
  /** A node starting or back from an outage: everyone, send me your snapshot. */
  | { t: 'hello' }
  /** A node leaving cleanly: forget its share now rather than after the timeout. */
  | { t: 'bye' }
  | { t: 'cmd'; id: string; c: ClusterCommand }
  | { t: 'res'; id: string; to: string; r: CommandResult }
  /**
   * News from outside the cluster (the `switchboard apps` CLI): executed by every node, not
   * answered, and the sender is not counted as a node.
   */
  | { t: 'notice'; c: Extract<ClusterCommand, { kind: 'app-changed' }> };

/**
 * `v` wire version, `o` origin node, `s` the origin's sequence number of control-topic
 * messages (absent on channel messages), so a receiver notices what it missed.
 */
export type Envelope = WireMessage & { v: number; o: string; s?: number };

/** Buffers travel as base64 inside JSON. */
const BINARY = '__b64';

export function encodeWire(origin: string, message: WireMessage, seq?: number): Buffer {
  return Buffer.from(JSON.stringify({ v: WIRE_VERSION, o: origin, ...(seq === undefined ? {} : { s: seq }), ...message }, binaryAsBase64));
}

/** The bytes every message from `origin` starts with: encodeWire writes `v` then `o` first. */
export function ownMessagePrefix(origin: string): Buffer {
  return Buffer.from(`{"v":${WIRE_VERSION},"o":${JSON.stringify(origin)},`);
}

/** A JSON.stringify replacer: `this[key]` is the value before Buffer's own toJSON ran. */
function binaryAsBase64(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return Buffer.isBuffer(raw) ? { [BINARY]: raw.toString('base64') } : value;
}

export type DecodeResult = { ok: true; envelope: Envelope } | { ok: false; reason: 'malformed' | 'version' };

export function decodeWire(bytes: Buffer): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'), (_key, value: unknown) =>
      value && typeof value === 'object' && typeof (value as Record<string, unknown>)[BINARY] === 'string'
        ? Buffer.from((value as Record<string, string>)[BINARY], 'base64')
        : value,
    );
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  if (typeof parsed !== 'object' || parsed === null) return { ok: false, reason: 'malformed' };
  const e = parsed as Partial<Envelope>;
  if (e.v !== WIRE_VERSION) return { ok: false, reason: 'version' };
  if (typeof e.o !== 'string' || typeof e.t !== 'string') return { ok: false, reason: 'malformed' };
  return { ok: true, envelope: e as Envelope };
}
