import type { CloseReason } from '../../core/connection.js';
import { StandardCloseCode } from '../../transport/seam.js';

/**
 * Every code the native protocol speaks, each defined once with its meaning. The README's
 * native tables are checked against these by test/unit/code-tables.test.ts.
 */

/** Codes of `{"type":"error","code":…}` frames; the connection stays open. */
export const NativeErrorCode = {
  INVALID_JSON: 'the frame is not JSON',
  INVALID_MESSAGE: 'not a JSON object with a string `action`; a binary frame; `publish` without `data`',
  UNKNOWN_ACTION: '`action` is not subscribe, unsubscribe, publish or ping',
  INVALID_CHANNEL: 'missing, empty, too long, control characters, or a reserved `#` name',
  WRONG_PASSWORD: 'the channel is in `channelPasswords` and the password is missing or wrong',
  FORBIDDEN_CHANNEL: 'private/presence channel without an authenticated user allowed to join it',
  PRESENCE_FULL: 'the presence channel has `maxPresenceMembers` members',
  PUBLISH_DISABLED: '`publish` while the app\'s `clientPublish` is off',
  NOT_SUBSCRIBED: '`publish` to a channel the connection is not subscribed to',
  INVALID_EVENT: '`event` empty, too long, or reserved (`pusher:` / `pusher_internal:`)',
  MESSAGE_TOO_LARGE: '`data` larger than `maxEventDataBytes`',
  CHANNEL_FULL: 'the channel has `maxChannelSubscribers` subscribers on this node',
  TOO_MANY_CHANNELS: 'the connection is on `maxChannelsPerConnection` channels',
  RATE_LIMITED: 'more than `clientMessagesPerSecond` frames per second, or more than 100 frames waiting behind a hook; the frame is dropped',
  MESSAGE_REJECTED: "the embedding application's `publish` hook refused the message; not delivered",
  HOOK_FAILED: 'a hook threw, rejected, timed out or renamed the event to an invalid name: the `publish` hook (message not delivered) or a notification hook',
  HISTORY_UNAVAILABLE: 'the history store could not be read: subscribed, but without a replay',
} as const;
export type NativeErrorCode = keyof typeof NativeErrorCode;

/** Codes of a refused `/ws` handshake (`{"success":false,"errorCode":…}`), with their HTTP status. */
export const NativeRefusalCode = {
  APP_NOT_FOUND: { status: [404], description: 'unknown app key' },
  APP_DISABLED: { status: [403], description: 'the app has `enabled: false`' },
  ORIGIN_NOT_ALLOWED: { status: [403], description: 'an `Origin` the app does not allow' },
  WRONG_PASSWORD: { status: [403], description: 'a room in `channelPasswords` named without its password' },
  OVER_CAPACITY: { status: [503], description: 'the node has `maxConnections` connections' },
  APP_STORE_UNAVAILABLE: { status: [503], description: 'the app database cannot be reached and the app is not cached: retry (`Retry-After`)' },
  MISSING_CLAIM: { status: [401], description: 'claim unknown or already used' },
  EXPIRED_CLAIM: { status: [401], description: 'claim past its expiration' },
  INVALID_JWT: { status: [401], description: 'a JWT that does not verify or breaks a limit' },
  AUTH_WEBHOOK_FAILED: { status: [503, 502], description: 'the auth webhook timed out, could not be reached, or answered 5xx' },
  AUTH_REFUSED: { status: [401, 403], description: 'the auth webhook refused, or answered something unusable' },
  MISSING_AUTHENTICATION: { status: [401], description: 'no credentials and `allowAnonymous: false`' },
} as const;
export type NativeRefusalCode = keyof typeof NativeRefusalCode;

/** The 4xxx codes of the native protocol, the same numbers as Pusher's where the meaning is the same. */
export const NativeCloseCode = {
  AppDisabled: 4003,
  OverConnectionQuota: 4004,
  Terminated: 4009,
  /** The embedding application's connectionOpened hook refused the connection (its reason is the close reason). */
  RefusedByApplication: 4010,
  SlowConsumer: 4100,
  /** The connectionOpened hook threw, rejected or timed out: reconnect after a back-off. */
  ConnectionHookFailed: 4101,
  PongNotReceived: 4201,
  ClosedAfterInactivity: 4202,
} as const;

/**
 * WebSocket close codes for the native protocol, per reason the hub closes a connection: standard
 * ones where they fit, 4xxx otherwise (the text: core's closeReasonText).
 */
export const NativeClose: Record<CloseReason, number> = {
  terminated: NativeCloseCode.Terminated,
  shutdown: StandardCloseCode.GoingAway,
  slow_consumer: NativeCloseCode.SlowConsumer,
  pong_timeout: NativeCloseCode.PongNotReceived,
  over_quota: NativeCloseCode.OverConnectionQuota,
  idle: NativeCloseCode.ClosedAfterInactivity,
  app_disabled: NativeCloseCode.AppDisabled,
};
