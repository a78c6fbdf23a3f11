import { appSchema, type AppConfig } from '../config/schema.js';

/**
 * How an app is laid out in a table (or a DynamoDB item): one column per setting of the config
 * file. Where soketi or Sockudo already name a setting, their name is ours, so their `apps` /
 * `applications` table is read as it is; their other spellings are read too (aliases).
 */

type FieldName = keyof AppConfig;
export type ColumnKind = 'text' | 'bool' | 'int' | 'json';

interface Alias {
  readonly name: string;
  /** Their unit per ours, e.g. 1024 for a size in KiB where ours is in bytes. */
  readonly scale?: number;
}

export interface ColumnSpec {
  readonly field: FieldName;
  /** The column `apps init` creates and writes go to. */
  readonly name: string;
  readonly kind: ColumnKind;
  /** Other names read for this setting (soketi's and Sockudo's spellings). */
  readonly aliases?: readonly Alias[];
  /**
   * -1 is soketi's and Sockudo's "no limit": the value that means the same here. Any other
   * negative number is a bad row.
   */
  readonly unlimited?: number;
}

/** Client events per second that stands for soketi's -1 ("no limit") where 0 means nothing here. */
const EFFECTIVELY_UNLIMITED = 1_000_000;

export const COLUMNS: readonly ColumnSpec[] = [
  { field: 'id', name: 'id', kind: 'text' },
  { field: 'key', name: 'key', kind: 'text' },
  { field: 'secret', name: 'secret', kind: 'text' },
  { field: 'enabled', name: 'enabled', kind: 'bool' },
  { field: 'enableClientMessages', name: 'enable_client_messages', kind: 'bool' },
  { field: 'enableSubscriptionCount', name: 'enable_subscription_count', kind: 'bool' },
  { field: 'maxConnections', name: 'max_connections', kind: 'int', unlimited: 0 },
  { field: 'maxPresenceMembers', name: 'max_presence_members_per_channel', kind: 'int' },
  { field: 'maxPresenceUserInfoBytes', name: 'max_presence_user_info_bytes', kind: 'int', aliases: [{ name: 'max_presence_member_size_in_kb', scale: 1024 }] },
  { field: 'maxUserIdLength', name: 'max_user_id_length', kind: 'int' },
  { field: 'maxEventDataBytes', name: 'max_event_data_bytes', kind: 'int', aliases: [{ name: 'max_event_payload_in_kb', scale: 1024 }] },
  { field: 'maxEventNameLength', name: 'max_event_name_length', kind: 'int' },
  { field: 'maxChannelNameLength', name: 'max_channel_name_length', kind: 'int' },
  { field: 'maxEventChannels', name: 'max_event_channels_at_once', kind: 'int' },
  { field: 'maxBatchSize', name: 'max_event_batch_size', kind: 'int' },
  { field: 'maxWatchlistSize', name: 'max_watchlist_size', kind: 'int' },
  { field: 'clientEventsPerSecond', name: 'max_client_events_per_sec', kind: 'int', aliases: [{ name: 'max_client_events_per_second' }], unlimited: EFFECTIVELY_UNLIMITED },
  { field: 'clientMessagesPerSecond', name: 'max_client_messages_per_sec', kind: 'int' },
  { field: 'maxChannelSubscribers', name: 'max_channel_subscribers', kind: 'int' },
  { field: 'maxChannelsPerConnection', name: 'max_channels_per_connection', kind: 'int' },
  { field: 'maxQueueBytes', name: 'max_queue_bytes', kind: 'int' },
  { field: 'maxQueueMessages', name: 'max_queue_messages', kind: 'int' },
  { field: 'slowConsumerPolicy', name: 'slow_consumer_policy', kind: 'text' },
  { field: 'slowConsumerWaitMs', name: 'slow_consumer_wait_ms', kind: 'int' },
  { field: 'apiRequestsPerSecond', name: 'max_backend_events_per_sec', kind: 'int', aliases: [{ name: 'max_backend_events_per_second' }], unlimited: 0 },
  { field: 'idleTimeoutSeconds', name: 'idle_timeout_seconds', kind: 'int' },
  { field: 'cacheTtlSeconds', name: 'cache_ttl_seconds', kind: 'int' },
  { field: 'allowedOrigins', name: 'allowed_origins', kind: 'json' },
  { field: 'apiToken', name: 'api_token', kind: 'text' },
  { field: 'allowAnonymous', name: 'allow_anonymous', kind: 'bool' },
  { field: 'clientPublish', name: 'client_publish', kind: 'bool' },
  { field: 'nativeFormat', name: 'native_format', kind: 'text' },
  { field: 'authWebhookUrl', name: 'auth_webhook_url', kind: 'text' },
  { field: 'authWebhookTimeoutMs', name: 'auth_webhook_timeout_ms', kind: 'int' },
  { field: 'jwtSecret', name: 'jwt_secret', kind: 'text' },
  { field: 'claimTtlSeconds', name: 'claim_ttl_seconds', kind: 'int' },
  { field: 'channelPasswords', name: 'channel_passwords', kind: 'json' },
  { field: 'signIn', name: 'sign_in', kind: 'text' },
  { field: 'signInTimeoutMs', name: 'sign_in_timeout_ms', kind: 'int' },
  { field: 'webhooks', name: 'webhooks', kind: 'json' },
];

/** Columns of soketi's and Sockudo's tables that mean nothing here (read and ignored). */
export const IGNORED_COLUMNS = [
  'max_read_req_per_sec',
  'max_read_requests_per_second',
  'enable_stats',
  'enable_user_authentication',
  'enable_watchlist_events',
  'policy',
  'channel_delta_compression',
  'idempotency',
  'connection_recovery',
  'created_at',
  'updated_at',
] as const;

/** Which lookups a store answers: by id (REST API), key (WebSocket) and API token (native API). */
export type LookupField = 'id' | 'key' | 'apiToken';
export const LOOKUP_COLUMN: Record<LookupField, string> = { id: 'id', key: 'key', apiToken: 'api_token' };

/** A row as a store found it: an app, or the reason it cannot be served. */
export type StoredApp = { readonly ok: true; readonly app: AppConfig } | { readonly ok: false; readonly id: string; readonly reason: string };

function asBool(v: unknown): unknown {
  if (typeof v === 'number' || typeof v === 'bigint') return Number(v) !== 0;
  if (v === '1' || v === 't' || v === 'true') return true;
  if (v === '0' || v === 'f' || v === 'false') return false;
  return v;
}

function asNumber(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  // Drivers hand BIGINT and DECIMAL columns over as text.
  if (typeof v === 'string' && /^-?\d+$/.test(v.trim())) return Number(v);
  return v;
}

function asJson(v: unknown): unknown {
  // MariaDB's JSON is LONGTEXT, and some tables keep JSON in TEXT: parse it.
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v; // the schema names the problem
  }
}

/**
 * A webhook as soketi and Sockudo write them (`event_types`, `filter.channel_name_starts_with`)
 * or as our config file does. Anything else is left for the schema to refuse.
 */
function webhookFromRow(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const w = raw as Record<string, unknown>;
  if (!('event_types' in w) && !('filter' in w)) return w;
  const filter = (typeof w['filter'] === 'object' && w['filter'] !== null ? w['filter'] : {}) as Record<string, unknown>;
  const prefix = filter['channel_name_starts_with'] ?? filter['channel_prefix'];
  const headers = w['headers'];
  return {
    url: w['url'],
    ...(w['event_types'] === undefined || w['event_types'] === null ? {} : { events: w['event_types'] }),
    ...(typeof prefix === 'string' && prefix !== '' ? { channelPrefix: prefix } : {}),
    ...(headers === undefined || headers === null ? {} : { headers }),
  };
}

function readColumn(spec: ColumnSpec, raw: unknown, scale: number): unknown {
  switch (spec.kind) {
    case 'bool':
      return asBool(raw);
    case 'json': {
      const value = asJson(raw);
      return spec.field === 'webhooks' && Array.isArray(value) ? value.map(webhookFromRow) : value;
    }
    case 'int': {
      const n = asNumber(raw);
      if (n === -1 && spec.unlimited !== undefined) return spec.unlimited;
      return typeof n === 'number' && scale !== 1 ? n * scale : n;
    }
    default:
      return raw;
  }
}

/**
 * A row (any of the three shapes) to an app, checked by the same schema as the config file.
 * NULL means "the default"; unknown columns are ignored.
 */
export function appFromRow(row: Record<string, unknown>): StoredApp {
  const input: Record<string, unknown> = {};
  for (const spec of COLUMNS) {
    const names: Alias[] = [{ name: spec.name }, ...(spec.aliases ?? [])];
    for (const { name, scale = 1 } of names) {
      const raw = row[name];
      if (raw === null || raw === undefined) continue;
      input[spec.field] = readColumn(spec, raw, scale);
      break;
    }
  }
  const parsed = appSchema.safeParse(input);
  if (parsed.success) return { ok: true, app: parsed.data };
  const rawId = row['id'];
  const id = typeof rawId === 'string' ? rawId : typeof rawId === 'number' ? String(rawId) : '?';
  const reason = parsed.error.issues.map((i) => `${i.path.map(String).map(columnOf).join('.') || 'row'}: ${i.message}`).join('; ');
  return { ok: false, id, reason };
}

function columnOf(field: string): string {
  return COLUMNS.find((c) => c.field === field)?.name ?? field;
}

const DEFAULTS = appSchema.parse({ id: 'x', key: 'x', secret: 'x' }) as Record<string, unknown>;

/**
 * The columns to write for `app`, in whichever spelling `existing` (the table's columns) has.
 * A setting the table has no column for may only hold its default: anything else would be lost.
 */
export function rowFromApp(app: AppConfig, existing: ReadonlySet<string> | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  const values = app as Record<string, unknown>;
  for (const spec of COLUMNS) {
    const value = values[spec.field];
    const names: Alias[] = [{ name: spec.name }, ...(spec.aliases ?? [])];
    const target = existing ? names.find((n) => existing.has(n.name)) : names[0];
    if (!target) {
      if (value === undefined || JSON.stringify(value) === JSON.stringify(DEFAULTS[spec.field])) continue;
      throw new AppStoreError(`the table has no column for ${spec.field} (${spec.name}): run "switchboard apps init" or leave it at its default`, 400);
    }
    if (value === undefined) row[target.name] = null;
    else if (spec.kind === 'json') row[target.name] = value;
    else if (spec.kind === 'int' && target.scale) row[target.name] = Math.ceil((value as number) / target.scale);
    else row[target.name] = value;
  }
  return row;
}

/** A write refused for a reason the caller can act on (status for the admin API). */
export class AppStoreError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'AppStoreError';
  }
}
