/**
 * An application as the hub sees it: identity, credentials and the per-app limits that every
 * front-end enforces. Built and validated by config/; frozen after start-up.
 */
export interface App {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
  readonly enabled: boolean;
  /** Pusher `client-*` events on private and presence channels. */
  readonly enableClientMessages: boolean;
  /** `pusher_internal:subscription_count` to subscribers of non-presence channels. */
  readonly enableSubscriptionCount: boolean;
  /** 0 = unlimited. Counted over the whole app. */
  readonly maxConnections: number;
  readonly maxPresenceMembers: number;
  readonly maxPresenceUserInfoBytes: number;
  readonly maxUserIdLength: number;
  readonly maxEventDataBytes: number;
  readonly maxEventNameLength: number;
  readonly maxChannelNameLength: number;
  readonly maxEventChannels: number;
  readonly maxBatchSize: number;
  readonly maxWatchlistSize: number;
  readonly clientEventsPerSecond: number;
  /** Seconds a cache channel keeps its last event. */
  readonly cacheTtlSeconds: number;
}
