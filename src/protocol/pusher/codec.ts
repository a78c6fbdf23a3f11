import type { ChannelMessage, WireEncoder } from '../../core/message.js';
import { frameText } from '../../transport/frame.js';
import { positionField } from '../position.js';

/**
 * Pusher protocol 7 frames. Server events carry `data` as a JSON-encoded string (the protocol's
 * double encoding); wire names such as `socket_id` and `user_info` live only in this file.
 */

export interface ClientFrame {
  readonly event: string;
  readonly channel: string | undefined;
  readonly data: unknown;
}

/** Parses a client frame; undefined when it is not a JSON object with a string `event`. */
export function decodeClientFrame(text: string): ClientFrame | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const { event, channel, data } = parsed as Record<string, unknown>;
  if (typeof event !== 'string') return undefined;
  if (channel !== undefined && typeof channel !== 'string') return undefined;
  return { event, channel, data };
}

/** `{"event":E[,"channel":C],"data":D}` with D given as JSON text. */
function envelope(event: string, channel: string | undefined, dataJson: string, extra = ''): string {
  const ch = channel === undefined ? '' : `,"channel":${JSON.stringify(channel)}`;
  return `{"event":${JSON.stringify(event)}${ch},"data":${dataJson}${extra}}`;
}

/** A server event whose data is an object, double-encoded as Pusher clients expect. */
export function encodeEvent(event: string, channel: string | undefined, data: unknown): string {
  return envelope(event, channel, JSON.stringify(JSON.stringify(data)));
}

export function encodeError(code: number | null, message: string): string {
  return envelope('pusher:error', undefined, JSON.stringify({ code, message }));
}

/** Once per connection: the data text is written out rather than built from an object and encoded twice. */
export function encodeConnectionEstablished(socketId: string, activityTimeoutSeconds: number): string {
  const data = `{"socket_id":${JSON.stringify(socketId)},"activity_timeout":${JSON.stringify(activityTimeoutSeconds)}}`;
  return envelope('pusher:connection_established', undefined, JSON.stringify(data));
}

/** `extra`: the recovery fields on history channels (see recovery.ts), which pusher-js ignores. */
export function encodeSubscriptionSucceeded(channel: string, members: ReadonlyMap<string, unknown> | undefined, extra = ''): string {
  if (!members) return envelope('pusher_internal:subscription_succeeded', channel, '"{}"', extra);
  // No prototype: a member whose id is "__proto__" is a key like any other.
  const hash = Object.create(null) as Record<string, unknown>;
  for (const [id, info] of members) hash[id] = info ?? null;
  const presence = { presence: { ids: [...members.keys()], hash, count: members.size } };
  return envelope('pusher_internal:subscription_succeeded', channel, JSON.stringify(JSON.stringify(presence)), extra);
}

export function encodeSubscriptionError(channel: string, type: string, error: string, status: number): string {
  return envelope('pusher:subscription_error', channel, JSON.stringify({ type, error, status }));
}

/** Without `data`, as Pusher sends it: pusher-js handlers receive `undefined`, and applications test for that. */
export function encodeCacheMiss(channel: string): string {
  return `{"event":"pusher:cache_miss","channel":${JSON.stringify(channel)}}`;
}

export function encodeWatchlist(online: readonly string[], offline: readonly string[]): string {
  const events: { name: string; user_ids: readonly string[] }[] = [];
  if (online.length) events.push({ name: 'online', user_ids: online });
  if (offline.length) events.push({ name: 'offline', user_ids: offline });
  return encodeEvent('pusher_internal:watchlist_events', undefined, { events });
}

export function encodeChannelMessage(message: ChannelMessage): string {
  switch (message.kind) {
    case 'event': {
      const data =
        typeof message.data === 'string'
          ? message.dataIsJson
            ? message.data
            : JSON.stringify(message.data)
          : // Pusher clients take text only: binary payloads from the native API arrive base64-encoded.
            JSON.stringify(message.data.toString('base64'));
      const userId = message.userId === undefined ? '' : `,"user_id":${JSON.stringify(message.userId)}`;
      // On history channels the position rides along as a field pusher-js drops (recovery.ts).
      return envelope(message.event, message.channel, data, message.position === undefined ? userId : userId + positionField(message.position));
    }
    case 'member_added':
      return encodeEvent('pusher_internal:member_added', message.channel, { user_id: message.userId, user_info: message.userInfo ?? null });
    case 'member_removed':
      return encodeEvent('pusher_internal:member_removed', message.channel, { user_id: message.userId });
    case 'subscription_count':
      return encodeEvent('pusher_internal:subscription_count', message.channel, { subscription_count: message.count });
  }
}

/** Shared by every Pusher connection, so a broadcast is encoded and framed once. */
export const pusherWire: WireEncoder = {
  encode: (message) => frameText(encodeChannelMessage(message)),
};
