import type { ResumeOutcome } from '../../core/channel-history.js';
import { positionField } from '../position.js';
import type { App } from '../../core/app.js';
import type { NativeErrorCode } from './codes.js';
import type { ChannelMessage, WireEncoder } from '../../core/message.js';
import { frameBinary, frameText } from '../../transport/frame.js';

/**
 * The native protocol's wire. Clients send `{"action": ...}` JSON. What they receive depends on
 * the format: `raw`, the payload as text or binary exactly as published (dSock, the FrankenPHP
 * hub, plumego); `envelope`, a JSON envelope `{"channel","event","data"}` that tells channels
 * apart; `cadsock`, cadsock's `{"type":"message","channel","payload"}`.
 */
export type NativeFormat = App['nativeFormat'];

export interface NativeClientMessage {
  readonly action: string;
  readonly channel: unknown;
  readonly data: unknown;
  readonly event: unknown;
  readonly password: unknown;
  /** subscribe: the last position seen on a history channel, to resume from. */
  readonly since: unknown;
}

export type NativeDecode = { ok: true; message: NativeClientMessage } | { ok: false; code: NativeErrorCode & ('INVALID_JSON' | 'INVALID_MESSAGE') };

export function decodeNative(text: string): NativeDecode {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, code: 'INVALID_JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return { ok: false, code: 'INVALID_MESSAGE' };
  const m = parsed as Record<string, unknown>;
  if (typeof m.action !== 'string') return { ok: false, code: 'INVALID_MESSAGE' };
  return { ok: true, message: { action: m.action, channel: m.channel, data: m.data, event: m.event, password: m.password, since: m.since } };
}

export function encodeNativeError(code: NativeErrorCode, message: string, channel: string | undefined, format: NativeFormat): string {
  // cadsock clients read the text from `error`; the code is there for everyone.
  const text = format === 'cadsock' ? { error: message } : { message };
  return JSON.stringify(channel === undefined ? { type: 'error', code, ...text } : { type: 'error', code, ...text, channel });
}

export function encodeNativeAck(type: 'subscribed' | 'unsubscribed', channel: string, resumed?: ResumeOutcome): string {
  return JSON.stringify(resumed ? { type, channel, recovered: resumed.recovered, position: resumed.position } : { type, channel });
}

/** Raw delivery: payloads only; presence and count notices are not for raw clients. */
const nativeRawWire: WireEncoder = {
  encode(message) {
    if (message.kind !== 'event') return null;
    return typeof message.data === 'string' ? frameText(message.data) : frameBinary(message.data);
  },
};

export function encodeEnvelope(message: ChannelMessage): string {
  const channel = JSON.stringify(message.channel);
  switch (message.kind) {
    case 'event': {
      let data: string;
      let encoding = '';
      if (typeof message.data !== 'string') {
        data = JSON.stringify(message.data.toString('base64'));
        encoding = ',"encoding":"base64"';
      } else data = message.dataIsJson ? message.data : JSON.stringify(message.data);
      const user = message.userId === undefined ? '' : `,"user_id":${JSON.stringify(message.userId)}`;
      return `{"channel":${channel},"event":${JSON.stringify(message.event)},"data":${data}${encoding}${user}${positionField(message.position)}}`;
    }
    case 'member_added':
      return `{"channel":${channel},"event":"member_added","data":${JSON.stringify({ user_id: message.userId, user_info: message.userInfo ?? null })}}`;
    case 'member_removed':
      return `{"channel":${channel},"event":"member_removed","data":${JSON.stringify({ user_id: message.userId })}}`;
    case 'subscription_count':
      return `{"channel":${channel},"event":"subscription_count","data":{"subscription_count":${message.count}}}`;
  }
}

const nativeEnvelopeWire: WireEncoder = {
  encode: (message) => frameText(encodeEnvelope(message)),
};

/**
 * cadsock's delivery: the published text goes into `payload` as JSON (cadsock backends send
 * JSON-encoded messages); text that is not JSON goes in as a string rather than being lost.
 */
const nativeCadsockWire: WireEncoder = {
  encode(message) {
    if (message.kind !== 'event') return null;
    let payload: string;
    if (typeof message.data !== 'string') payload = JSON.stringify(message.data.toString('base64'));
    else payload = message.dataIsJson || isJsonText(message.data) ? message.data : JSON.stringify(message.data);
    return frameText(`{"type":"message","channel":${JSON.stringify(message.channel)},"payload":${payload}${positionField(message.position)}}`);
  },
};

function isJsonText(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

export const NATIVE_WIRES: Readonly<Record<NativeFormat, WireEncoder>> = { raw: nativeRawWire, envelope: nativeEnvelopeWire, cadsock: nativeCadsockWire };

/** The format a client named with ?format=, when it is one of ours. */
export function nativeFormatNamed(name: string | null): NativeFormat | undefined {
  return name !== null && Object.hasOwn(NATIVE_WIRES, name) ? (name as NativeFormat) : undefined;
}
