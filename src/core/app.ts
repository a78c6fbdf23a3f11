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
  readonly clientMessagesPerSecond: number;
  /** Per channel on this node; 0 = no limit. */
  readonly maxChannelSubscribers: number;
  readonly maxChannelsPerConnection: number;
  readonly maxQueueBytes: number;
  readonly maxQueueMessages: number;
  readonly slowConsumerPolicy: 'drop' | 'close' | 'wait';
  readonly slowConsumerWaitMs: number;
  /** Cluster-wide; 0 = no limit. */
  readonly apiRequestsPerSecond: number;
  /** Pusher `pusher:signin`: allowed, required within `signInTimeoutMs` of connecting, or refused. */
  readonly signIn: 'allowed' | 'required' | 'disabled';
  readonly signInTimeoutMs: number;
  /** 0 = never. */
  readonly idleTimeoutSeconds: number;
  /** Seconds a cache channel keeps its last event. */
  readonly cacheTtlSeconds: number;
  /** Browser origins allowed to open a WebSocket (exact `scheme://host[:port]`); empty allows all. */
  readonly allowedOrigins: readonly string[];
  /** Bearer token of the native HTTP API for this app; unset means Pusher signatures only. */
  readonly apiToken?: string | undefined;
  /** Native protocol connections with no credentials (public channels only). */
  readonly allowAnonymous: boolean;
  /** Native clients may publish to channels they are subscribed to. */
  readonly clientPublish: boolean;
  /** What native clients receive unless they pass ?format=. */
  readonly nativeFormat: 'raw' | 'envelope' | 'cadsock';
  /** cadsock-style auth webhook, called before the upgrade with the client's cookies. */
  readonly authWebhookUrl?: string | undefined;
  readonly authWebhookTimeoutMs: number;
  /** HS256 secret for native connection JWTs. */
  readonly jwtSecret?: string | undefined;
  /** Lifetime of a single-use claim when its creator gives none. */
  readonly claimTtlSeconds: number;
  /** Channels that need a password to subscribe (plumego's rooms), name → password. */
  readonly channelPasswords: Readonly<Record<string, string>>;
  readonly webhooks: readonly WebhookTarget[];
}

export interface WebhookTarget {
  readonly url: string;
  /** Event names to send; all when undefined. */
  readonly events?: readonly string[] | undefined;
  readonly channelPrefix?: string | undefined;
  readonly channelSuffix?: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** Gather events for webhookBatchMs into one request, rather than one event per request. */
  readonly batch: boolean;
}
