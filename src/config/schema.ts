import { z } from 'zod';

/**
 * The one place where settings and their defaults live. Keys are camelCase; each top-level
 * scalar can also be set from the environment as SWITCHBOARD_<SCREAMING_SNAKE_KEY> (see load.ts).
 */

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

export const appSchema = z
  .object({
    id: z.string().min(1, 'is required'),
    key: z.string().min(1, 'is required'),
    secret: z.string().min(1, 'is required'),
    enabled: z.boolean().default(true),
    enableClientMessages: z.boolean().default(false),
    enableSubscriptionCount: z.boolean().default(false),
    maxConnections: nonNegativeInt.default(0),
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
    cacheTtlSeconds: positiveInt.max(30 * 60).default(30 * 60),
  })
  .strict();

export const configSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0'),
    port: z.number().int().min(0).max(65535).default(6001),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Told to Pusher clients in connection_established; the server pings after this much silence. */
    activityTimeoutSeconds: positiveInt.default(120),
    /** How long a pinged connection has to answer before it is closed with 4201. */
    pongTimeoutSeconds: positiveInt.default(30),
    /** Largest WebSocket message a client may send. */
    maxMessageBytes: positiveInt.default(64 * 1024),
    /** Largest HTTP API request body. */
    maxRequestBodyBytes: positiveInt.default(1024 * 1024),
    /** Bytes queued for one socket before the slow-consumer policy applies. */
    maxSocketBufferBytes: positiveInt.default(1024 * 1024),
    /** Bound on a graceful shutdown. */
    shutdownTimeoutMs: nonNegativeInt.default(10_000),
    apps: z.array(appSchema).default([]),
  })
  .strict()
  .superRefine((config, ctx) => {
    const ids = new Set<string>();
    const keys = new Set<string>();
    config.apps.forEach((app, i) => {
      if (ids.has(app.id)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'id'], message: `duplicate app id "${app.id}"` });
      if (keys.has(app.key)) ctx.addIssue({ code: 'custom', path: ['apps', i, 'key'], message: `duplicate app key "${app.key}"` });
      ids.add(app.id);
      keys.add(app.key);
    });
  });

export type AppConfig = z.output<typeof appSchema>;
export type Config = z.output<typeof configSchema>;
/** What callers may pass to createServer(): every field optional, defaults filled in. */
export type ConfigInput = z.input<typeof configSchema>;
