import { z } from 'zod';
import { isAddressOrRange } from '../util/client-address.js';
import { isOriginPattern } from '../util/origin-pattern.js';

/**
 * The one place where settings and their defaults live. Keys are camelCase; each top-level
 * scalar can also be set from the environment as SWITCHBOARD_<SCREAMING_SNAKE_KEY> (see load.ts).
 */

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** Browser origins allowed to call the HTTP APIs (CORS): `*`, `https://app.example.com`, `https://*.example.com`, `*.example.com`. */
const corsOrigins = z
  .array(z.string().refine(isOriginPattern, 'must be *, an origin (https://app.example.com[:port]) or a sub-domain pattern (https://*.example.com)'))
  .default([]);

const webhookEvents = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed', 'client_event', 'cache_miss'] as const;

/**
 * An http(s) URL the server calls. fetch() refuses URLs holding a user or password, so such a
 * URL would fail every call (and show its password in every failure): credentials go in headers.
 */
const outboundUrl = z
  .url({ protocol: /^https?$/ })
  .refine((url) => {
    // Refinements run even after the URL check failed: that one has said what is wrong.
    if (!URL.canParse(url)) return true;
    const parsed = new URL(url);
    return parsed.username === '' && parsed.password === '';
  }, 'must not hold a user or password (send credentials in headers)');

export const webhookSchema = z
  .object({
    url: outboundUrl,
    /** Which events go to this URL; all of them when omitted. */
    events: z.array(z.enum(webhookEvents)).min(1).optional(),
    /** Only events of channels whose name starts with this. */
    channelPrefix: z.string().optional(),
    /** Only events of channels whose name ends with this (with channelPrefix: both must match). */
    channelSuffix: z.string().optional(),
    headers: z.record(z.string(), z.string()).default({}),
    /** Events of up to webhookBatchMs in one request (Pusher's opt-in "batch webhooks"); one per request otherwise. */
    batch: z.boolean().default(false),
  })
  .strict();

/** One history rule of an app: channels matching the pattern keep their last `size` messages for `ttlSeconds`. */
const historyRuleSchema = z
  .object({
    channels: z.string().min(1).describe('Channel name pattern; `*` matches any run of characters.'),
    size: positiveInt.max(1000).default(100).describe('Messages kept per channel.'),
    ttlSeconds: positiveInt.max(24 * 60 * 60).default(300).describe('Seconds a message is kept.'),
  })
  .strict();

export const appSchema = z
  .object({
    // soketi's and Sockudo's example files give numeric ids: taken as their decimal string.
    id: z
      .union([z.string().min(1, 'is required'), z.number().int().nonnegative().transform(String)])
      .describe('The app id of the HTTP API paths and webhooks (a number is taken as its decimal string).'),
    key: z.string().min(1, 'is required').describe('The public key clients connect with (`/app/{key}`).'),
    secret: z.string().min(1, 'is required').describe('Signs API requests, private and presence subscriptions, and webhooks.'),
    enabled: z.boolean().default(true),
    enableClientMessages: z.boolean().default(false).describe('Pusher `client-*` events on private and presence channels.'),
    enableSubscriptionCount: z.boolean().default(false).describe('`pusher_internal:subscription_count` to subscribers of non-presence channels.'),
    maxConnections: nonNegativeInt.default(0).describe('0 = unlimited. Counted over the whole app.'),
    maxPresenceMembers: positiveInt.default(100),
    maxPresenceUserInfoBytes: positiveInt.default(1024),
    maxUserIdLength: positiveInt.default(128),
    maxEventDataBytes: positiveInt.default(10 * 1024),
    maxEventNameLength: positiveInt.default(200),
    maxChannelNameLength: positiveInt.default(200),
    maxEventChannels: positiveInt.default(100),
    maxBatchSize: positiveInt.default(10),
    maxWatchlistSize: positiveInt.default(100),
    clientEventsPerSecond: positiveInt.default(10),
    clientMessagesPerSecond: positiveInt.default(50).describe('Native protocol: actions a connection may send per second (bursts up to the same number).'),
    maxChannelSubscribers: nonNegativeInt.default(0).describe('Subscribers of one channel on this node (plumego\'s per-room limit); 0 = no limit.'),
    maxChannelsPerConnection: positiveInt.default(100),
    maxQueueBytes: positiveInt.default(1024 * 1024).describe('A connection\'s send queue: bytes not yet taken by the kernel, and frames waiting.'),
    maxQueueMessages: positiveInt.default(1000),
    slowConsumerPolicy: z.enum(['drop', 'close', 'wait']).default('close').describe('What a full queue does: drop the message, close (4100) the connection, or wait for it to drain, then close.'),
    slowConsumerWaitMs: positiveInt.default(5_000),
    apiRequestsPerSecond: nonNegativeInt.default(0).describe('HTTP API requests per second for this app (counted over the cluster on the Redis engines, per node otherwise); 0 = no limit.'),
    signIn: z.enum(['allowed', 'required', 'disabled']).default('allowed').describe('Pusher user sign-in: allowed; required within signInTimeoutMs of connecting (else close 4009, soketi\'s enableUserAuthentication); disabled (pusher:signin refused with 4300).'),
    signInTimeoutMs: positiveInt.default(30_000).describe('How long a connection of a signIn: required app has to sign in.'),
    idleTimeoutSeconds: nonNegativeInt.default(0).describe('Close connections that have not subscribed to anything after this long; 0 = never.'),
    cacheTtlSeconds: positiveInt.max(30 * 60).default(30 * 60).describe('Seconds a cache channel keeps its last event.'),
    allowedOrigins: z.array(z.string().min(1)).default([]).describe('Browser origins allowed to open a WebSocket (exact `scheme://host[:port]`); empty allows all.'),
    corsOrigins: corsOrigins.describe("Browser origins allowed to call this app's HTTP API, added to the server's corsOrigins."),
    apiToken: z.string().min(16, 'must be at least 16 characters').optional().describe('Bearer token of the native HTTP API for this app; unset means Pusher signatures only.'),
    allowAnonymous: z.boolean().default(true).describe('Native protocol connections with no credentials (public channels only).'),
    clientPublish: z.boolean().default(false).describe('Native clients may publish to channels they are subscribed to.'),
    nativeFormat: z.enum(['raw', 'envelope', 'cadsock']).default('raw').describe('What native clients receive unless they ask with ?format=: raw payloads, envelopes, or cadsock\'s messages.'),
    authWebhookUrl: outboundUrl.optional().describe('cadsock-style auth webhook, called before the upgrade with the client\'s cookies.'),
    authWebhookTimeoutMs: positiveInt.default(5_000),
    jwtSecret: z.string().min(16, 'must be at least 16 characters').optional().describe('HS256 secret for native connection JWTs.'),
    claimTtlSeconds: positiveInt.default(60).describe('Lifetime of a single-use claim when its creator gives none.'),
    channelPasswords: z.record(z.string(), z.string().min(1)).default({}).describe('Channels that need a password to subscribe (plumego\'s rooms), name → password.'),
    webhooks: z.array(webhookSchema).default([]),
    history: z.array(historyRuleSchema).default([]).describe('Channels that keep history for replay and resume: `[{ channels: "chat-*", size: 100, ttlSeconds: 300 }]`; the first matching rule applies.'),
  })
  .strict();

export const configSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0').describe('Interface the client and API listener binds (also read from HOST).'),
    port: z.number().int().min(0).max(65535).default(6001).describe('Port of the client and API listener; 0 picks a free one (also read from PORT).'),
    metricsPort: z.number().int().min(0).max(65535).default(0).describe('Prometheus metrics (GET /metrics) on their own listener; 0 = off.'),
    metricsHost: z.string().default('').describe('Interface of the metrics listener; empty = the same as `host`.'),
    metricsTls: z.boolean().default(false).describe('Serve the metrics listener over TLS too, with the server\'s certificate (needs tlsCert).'),
    tlsCert: z.string().default('').describe('PEM certificate (or full chain) file; with tlsKey, `port` serves https:// and wss:// only.'),
    tlsKey: z.string().default('').describe('PEM private key file of tlsCert.'),
    tlsCa: z.string().default('').describe('PEM intermediate certificates sent after tlsCert, when that file holds the certificate alone.'),
    tlsPassphrase: z.string().default('').describe('Passphrase of an encrypted tlsKey.'),
    tlsWatch: z.boolean().default(true).describe('Reload the certificate when its files change (SIGHUP reloads it regardless).'),
    tlsRedirectPort: z.number().int().min(0).max(65535).default(0).describe('A plain-HTTP listener on this port that redirects (308) to https://; 0 = off.'),
    corsOrigins: corsOrigins.describe('Browser origins allowed to call the HTTP APIs of every app (CORS); none here or in an app = CORS off.'),
    metricsMaxApps: positiveInt.default(1000).describe('Apps with an app_id label of their own in the metrics; the rest are summed under "_other".'),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Least severe log level written.'),
    logFormat: z.enum(['auto', 'json', 'pretty']).default('auto').describe('json: one JSON object per line; pretty: coloured lines for people; auto: pretty when stdout is a terminal, json otherwise.'),
    refusalLogIntervalMs: positiveInt.default(10_000).describe('Refusals (rate limits, slow consumers, failing webhooks, auth webhooks and engines) are logged at most once per this period per app and kind, with a count.'),
    activityTimeoutSeconds: positiveInt.default(120).describe('Told to Pusher clients in connection_established; the server pings after this much silence.'),
    nativePingIntervalSeconds: positiveInt.default(30).describe('Native clients silent this long get a WebSocket ping (they send none of their own; proxies cut idle connections at 60 s).'),
    pongTimeoutSeconds: positiveInt.default(30).describe('How long a pinged connection has to answer before it is closed with 4201.'),
    maxMessageBytes: positiveInt.default(64 * 1024).describe('Largest WebSocket message a client may send.'),
    maxConnectionsPerIp: nonNegativeInt.default(0).describe('Connections from one IP address on this node; 0 = no limit.'),
    connectionAttemptsPerIpPerSecond: nonNegativeInt.default(0).describe('WebSocket connection attempts per IP per second (shared over the cluster on Redis); 0 = no limit.'),
    apiRequestsPerIpPerSecond: nonNegativeInt.default(0).describe('HTTP API requests per IP per second; 0 = no limit.'),
    trustedProxies: z.array(z.string().refine(isAddressOrRange, 'must be an IP address or CIDR range')).default([]).describe('Load balancers / reverse proxies (addresses or CIDR ranges) whose X-Forwarded-For is believed; per-IP limits then count the client\'s address instead of the proxy\'s.'),
    handshakeTimeoutMs: positiveInt.default(10_000).describe('A client must finish its HTTP request (or WebSocket upgrade) headers within this time.'),
    listenBacklog: positiveInt.default(4096).describe('Connections the kernel may hold waiting for accept() (capped by net.core.somaxconn). Node\'s default, 511, drops SYNs in a reconnect storm: those clients retry after 1 s.'),
    maxRequestBodyBytes: positiveInt.default(1024 * 1024).describe('Largest HTTP API request body.'),
    maxConnections: nonNegativeInt.default(0).describe('Connections this node accepts over all apps (0 = no limit); beyond it clients get 4100 and back off.'),
    role: z.enum(['all', 'websocket', 'api']).default('all').describe('What this node serves: WebSockets and the HTTP API, or one of them (dSock\'s worker/API split).'),
    // The key keeps its user-facing name; in code the engines are `ClusterEngine`s, picked in cluster/create.ts.
    adapter: z.enum(['local', 'redis', 'redis-cluster', 'nats']).default('local').describe('The cluster engine: `local` (one node), `redis`, `redis-cluster` or `nats`.'),
    redisUrl: z.string().min(1).default('redis://127.0.0.1:6379').describe('Redis for the redis engine.'),
    redisClusterNodes: z.array(z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port')).default([]).describe('`host:port` seed nodes of a Redis Cluster.'),
    natsUrl: z.array(z.string().min(1)).default(['nats://127.0.0.1:4222']).describe('NATS servers for the nats engine.'),
    clusterPrefix: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only').default('switchboard').describe('Prefix of every key, channel and subject the cluster uses, so deployments can share an engine.'),
    clusterRouting: z
      .enum(['broadcast', 'interest'])
      .default('broadcast')
      .describe('How channel messages reach nodes: `broadcast` (every node gets every message) or `interest` (a node gets only the shards of channels it has subscribers in).'),
    clusterShards: positiveInt.min(1).max(4096).default(256).describe('With clusterRouting interest: channels are hashed into this many shards, one engine subscription each; the same on every node.'),
    clusterInterestGraceMs: nonNegativeInt.default(5_000).describe('With clusterRouting interest: a node keeps a shard this long after its last subscriber there left, so churn costs no engine round trips.'),
    heartbeatIntervalMs: positiveInt.default(2_000).describe('How often a node tells the cluster it is alive.'),
    nodeTimeoutMs: positiveInt.default(10_000).describe('A node silent this long is dead: its connections and presence members are removed.'),
    clusterRequestTimeoutMs: positiveInt.default(2_000).describe('How long a cluster-wide command (terminate, /info, /disconnect) waits for the other nodes.'),
    engineTimeoutMs: positiveInt
      .default(5_000)
      .describe("A node whose own heartbeats have not come back through the engine for this long counts the engine as down although connected (frozen); must be greater than heartbeatIntervalMs."),
    idempotencyWindowSeconds: positiveInt
      .max(24 * 60 * 60)
      .default(120)
      .describe('A publish naming an idempotency key already used by a publish of the same app this many seconds ago is acknowledged and not delivered again (cluster-wide).'),
    startTimeoutMs: positiveInt.default(10_000).describe('Connecting to the cluster engine and the webhook queue at start-up gives up after this long: the CLI exits 2.'),
    webhookBatchMs: nonNegativeInt.default(100).describe('Webhook events are batched for this long into one POST per target.'),
    webhookLeaveDelayMs: nonNegativeInt.default(3_000).describe('channel_vacated / member_removed wait this long and are dropped if the channel or member is back by then (Pusher: ~3 s).'),
    webhookTimeoutMs: positiveInt.default(5_000).describe('Time a webhook POST may take before it counts as failed.'),
    webhookRetryForMs: nonNegativeInt.default(5 * 60_000).describe('A target that keeps failing is retried with backoff for this long, then its events are dropped.'),
    webhookMaxQueue: positiveInt.default(10_000).describe('Events waiting per target (webhookQueue memory); beyond it the oldest are dropped (and counted).'),
    webhookQueue: z.enum(['memory', 'redis', 'nats']).default('memory').describe('Where webhook events wait: memory (lost if the node dies), or redis / nats, where any node delivers them and they outlive the node that raised them.'),
    webhookQueueMaxEntries: positiveInt.default(100_000).describe('Durable webhook queue: events waiting per app; at the bound new events are refused (and counted).'),
    webhookQueueMaxBytes: positiveInt.default(64 * 1024 * 1024).describe('Durable webhook queue: bytes of events waiting per app; at the bound new events are refused (and counted).'),
    webhookQueueLeaseMs: positiveInt.default(30_000).describe('Durable webhook queue: a node that took events and went silent this long (died, froze) leaves them to another node.'),
    webhookQueuePollMs: positiveInt.default(1_000).describe('Durable webhook queue: how often each lane looks for events raised on other nodes (pushes on this node are sent at once).'),
    webhookDeadLetterMax: positiveInt.default(1_000).describe('Durable webhook queue: dead letters (events given up after the last retry) kept per app; beyond it the oldest go.'),
    shutdownSpreadMs: nonNegativeInt.default(2_000).describe('On shutdown, clients are told to reconnect spread over this window, so other nodes see no storm.'),
    shutdownTimeoutMs: nonNegativeInt.default(10_000).describe('Bound on a graceful shutdown.'),
    appStore: z.enum(['config', 'postgres', 'mysql', 'dynamodb']).default('config').describe('Where apps live: the config file (fixed at start), or a database read while the server runs.'),
    appStoreUrl: z.string().default('').describe('`postgres://user:pass@host:5432/db` or `mysql://user:pass@host:3306/db` for those stores.'),
    appStoreTable: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'letters, digits, _ and - only, starting with a letter or _')
      .default('apps')
      .describe('The table (or DynamoDB table) of apps: soketi\'s is `apps`, Sockudo\'s `applications`.'),
    appStoreRegion: z.string().default('').describe('DynamoDB: the AWS region; empty = the SDK\'s (AWS_REGION).'),
    appStoreEndpoint: z.string().default('').describe('DynamoDB: an endpoint for DynamoDB Local or dynalite; empty = AWS.'),
    appStoreTimeoutMs: positiveInt.default(2_000).describe('A query slower than this fails: a slow database counts as down.'),
    appCacheTtlMs: positiveInt.default(5_000).describe('How long a looked-up app is used before it is read again; apps in use are re-read at this interval.'),
    appNegativeCacheSize: positiveInt.default(10_000).describe('Unknown keys and ids remembered (for appCacheTtlMs), so a storm of bad keys does not reach the database.'),
    adminToken: z
      .string()
      .refine((token) => token === '' || token.length >= 16, 'must be at least 16 characters')
      .default('')
      .describe('Bearer token of the admin API (/admin/apps); empty turns the admin API off.'),
    hookTimeoutMs: positiveInt.default(5_000).describe("Embedding hooks (createServer's `hooks`): a hook that has not answered after this long fails (see README, Embedding)."),
    maxConnectionMetadataBytes: positiveInt.default(4 * 1024).describe('Largest metadata (as UTF-8 JSON) an embedding application may attach to one connection.'),
    dashboardPassword: z.string().min(12, 'must be at least 12 characters').optional().describe('Turns the web dashboard on: the password its sign-in form takes (so does adminToken). Unset, and no adminToken = no dashboard.'),
    dashboardPath: z.string().regex(/^\/[A-Za-z0-9_-]+$/, 'must be one path segment such as /dashboard').default('/dashboard').describe('Where the dashboard is served (on the main port, or on dashboardPort).'),
    dashboardPort: z.number().int().min(0).max(65535).default(0).describe('Serve the dashboard alone on this port instead of the main one; 0 = on the main port.'),
    dashboardHost: z.string().default('').describe('Interface of the dashboard listener (dashboardPort); empty = the same as `host`.'),
    dashboardTls: z.boolean().default(false).describe("Serve the dashboard listener (dashboardPort) over TLS with the server's certificate (needs tlsCert)."),
    dashboardSessionMinutes: positiveInt.default(12 * 60).describe('How long a dashboard sign-in lasts.'),
    apps: z.array(appSchema).default([]),
  })
  .strict()
  .superRefine(
    (config, ctx) => {
      // Runs even when other settings failed (so every problem is listed at once): apps may be partly invalid here.
      if (!Array.isArray(config.apps)) return;
      const ids = new Set<string>();
      const keys = new Set<string>();
      config.apps.forEach((app: Partial<AppConfig> | null, i) => {
        if (typeof app !== 'object' || app === null) return;
        if (typeof app.id === 'string') {
          if (ids.has(app.id)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'id'], message: `duplicate app id "${app.id}"` });
          ids.add(app.id);
        }
        if (typeof app.key === 'string') {
          if (keys.has(app.key)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'key'], message: `duplicate app key "${app.key}"` });
          keys.add(app.key);
        }
      });
    },
    { when: () => true },
  )
  .superRefine(
    (config, ctx) => {
      // Runs even when other settings failed, so every problem is listed at once; fields may be invalid here.
      const { adapter, redisClusterNodes, nodeTimeoutMs, heartbeatIntervalMs, appStore, appStoreUrl } = config as Partial<typeof config>;
      if ((appStore === 'postgres' || appStore === 'mysql') && !appStoreUrl) {
        ctx.addIssue({ code: 'custom', path: ['appStoreUrl'], message: `the ${appStore} app store needs a URL (${appStore}://user:password@host/database)` });
      }
      tlsProblems(config).forEach(([path, message]) => ctx.addIssue({ code: 'custom', path: [path], message }));
      dashboardProblems(config).forEach(([path, message]) => ctx.addIssue({ code: 'custom', path: [path], message }));
      if (adapter === 'redis-cluster' && Array.isArray(redisClusterNodes) && redisClusterNodes.length === 0) {
        ctx.addIssue({ code: 'custom', path: ['redisClusterNodes'], message: 'the redis-cluster adapter needs at least one host:port' });
      }
      if (typeof nodeTimeoutMs === 'number' && typeof heartbeatIntervalMs === 'number' && nodeTimeoutMs <= heartbeatIntervalMs) {
        ctx.addIssue({ code: 'custom', path: ['nodeTimeoutMs'], message: 'must be longer than heartbeatIntervalMs' });
      }
      const { engineTimeoutMs } = config as Partial<typeof config>;
      if (typeof engineTimeoutMs === 'number' && typeof heartbeatIntervalMs === 'number' && engineTimeoutMs <= heartbeatIntervalMs) {
        ctx.addIssue({ code: 'custom', path: ['engineTimeoutMs'], message: 'must be longer than heartbeatIntervalMs' });
      }
    },
    { when: () => true },
  );

/** TLS settings that make no sense on their own. */
function tlsProblems(config: Partial<Record<string, unknown>>): [string, string][] {
  const problems: [string, string][] = [];
  const on = Boolean(config.tlsCert) && Boolean(config.tlsKey);
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) problems.push([config.tlsCert ? 'tlsKey' : 'tlsCert', 'tlsCert and tlsKey go together']);
  for (const key of ['tlsCa', 'tlsPassphrase', 'tlsRedirectPort', 'metricsTls', 'dashboardTls']) {
    if (config[key] && !on) problems.push([key, 'needs tlsCert and tlsKey']);
  }
  if (typeof config.tlsRedirectPort === 'number' && config.tlsRedirectPort !== 0 && config.tlsRedirectPort === config.port) {
    problems.push(['tlsRedirectPort', 'must differ from port']);
  }
  return problems;
}

/** A dashboard listener that could never serve anything. */
function dashboardProblems(config: Partial<Record<string, unknown>>): [string, string][] {
  const problems: [string, string][] = [];
  const port = typeof config.dashboardPort === 'number' ? config.dashboardPort : 0;
  if (port !== 0 && !config.dashboardPassword && !config.adminToken) problems.push(['dashboardPort', 'needs dashboardPassword or adminToken (the dashboard is off without one)']);
  if (port !== 0 && port === config.port) problems.push(['dashboardPort', 'must differ from port (0 serves the dashboard on the main port)']);
  if (config.dashboardTls && port === 0) problems.push(['dashboardTls', 'needs dashboardPort (on the main port the dashboard is served as the port is)']);
  return problems;
}

export type AppConfig = z.output<typeof appSchema>;
export type Config = z.output<typeof configSchema>;
/** What callers may pass to createServer(): every field optional, defaults filled in. */
export type ConfigInput = z.input<typeof configSchema>;
