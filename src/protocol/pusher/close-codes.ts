import type { CloseReason } from '../../core/connection.js';

/**
 * Pusher protocol 7 error and close codes. The range tells pusher-js what to do:
 * 4000-4099 do not reconnect, 4100-4199 reconnect after a back-off, 4200-4299 reconnect at
 * once, 4300+ are errors reported on a connection that stays open.
 */
export const PusherCode = {
  // 4000 (SSL only) is never sent: TLS is terminated in front of Switchboard.
  AppNotFound: 4001,
  AppDisabled: 4003,
  OverConnectionQuota: 4004,
  PathNotFound: 4005,
  InvalidVersion: 4006,
  UnsupportedProtocol: 4007,
  Unauthorized: 4009,
  /** The embedding application's connectionOpened hook refused the connection. */
  RefusedByApplication: 4010,
  OverCapacity: 4100,
  /** The connectionOpened hook threw, rejected or timed out: try again after a back-off. */
  ConnectionHookFailed: 4101,
  Reconnect: 4200,
  PongNotReceived: 4201,
  ClosedAfterInactivity: 4202,
  /** Bad input on an open connection: invalid JSON, unknown event, malformed data. */
  InvalidMessage: 4300,
  ClientEventRateLimit: 4301,
  WatchlistLimit: 4302,
  /** The clientEvent hook refused a client event (its reason follows). */
  MessageRejected: 4303,
  /** A hook threw, rejected, timed out or renamed the event to an invalid name: a client event was not delivered, or a notification hook failed. */
  HookFailed: 4304,
} as const;

export type PusherCode = (typeof PusherCode)[keyof typeof PusherCode];

/** The `type` of a `pusher:subscription_error`, with the HTTP-like status it carries. */
export const PusherSubscriptionError = {
  /** Not allowed on this channel: bad or missing signature, a password channel, another user's channel. */
  AuthError: 'AuthError',
  /** A subscriber, member or per-connection channel limit reached. */
  LimitReached: 'LimitReached',
  /** A presence subscription whose channel_data is not a JSON object with a user_id. */
  InvalidChannelData: 'InvalidChannelData',
} as const;
export type PusherSubscriptionError = (typeof PusherSubscriptionError)[keyof typeof PusherSubscriptionError];

/** The Pusher close code for each reason the hub closes a connection (the text: core's closeReasonText). */
export const closeCodeFor: Record<CloseReason, PusherCode> = {
  terminated: PusherCode.Unauthorized,
  shutdown: PusherCode.Reconnect,
  slow_consumer: PusherCode.OverCapacity,
  pong_timeout: PusherCode.PongNotReceived,
  over_quota: PusherCode.OverConnectionQuota,
  idle: PusherCode.ClosedAfterInactivity,
  app_disabled: PusherCode.AppDisabled,
};
