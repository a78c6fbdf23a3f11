import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppRegistry } from '../apps/registry.js';
import type { App } from '../core/app.js';
import { channelKind, isReservedEventName, isValidChannelName } from '../core/channels.js';
import type { HubActions, HubReadView } from '../core/hub-view.js';
import { statsOf, type StatsSnapshot } from '../core/stats.js';
import type { ChannelMessage } from '../core/message.js';
import { CounterName } from '../core/counters.js';
import { describeValue } from '../util/json.js';
import type { RequestTarget } from '../util/request-target.js';
import { verifyPusherSignature } from './pusher-signature.js';
import { enforceIpRate, enforceRate, type ApiRateContext } from './rate-limit.js';
import { HttpError } from './errors.js';
import { readChannelHistory } from './history-read.js';
import { IDEMPOTENCY_FIELD, checkIdempotencyKey, claimAll, idempotencyUnavailable } from './idempotent-publish.js';
import type { IdempotencyStore } from '../core/idempotency.js';
import { decodeSegment, parseJsonObject, readBody, sendJson } from './respond.js';

export interface PusherApiContext extends ApiRateContext {
  /** The hub as the API sees it: reads of channels and users, publishing, cluster commands. */
  readonly hub: HubReadView & HubActions;
  readonly apps: AppRegistry;
  readonly maxRequestBodyBytes: number;
  readonly now: () => number;
  /** Where idempotency keys of publishes are recorded (the engine's store). */
  readonly idempotency: IdempotencyStore;
}

const APP_PATH = /^\/apps\/([^/]+)(\/.*)$/;
const SOCKET_ID = /^\d+\.\d+$/;

/**
 * Pusher's REST API (signed): events, batch_events, channels, channel, users and
 * terminate_connections. Returns false when the path is not under /apps/.
 */
export async function handlePusherApi(req: IncomingMessage, res: ServerResponse, url: RequestTarget, ctx: PusherApiContext): Promise<boolean> {
  const match = APP_PATH.exec(url.pathname);
  if (!match) return false;
  const ipLimit = enforceIpRate(ctx, req);
  if (ipLimit) await ipLimit;
  const app = await ctx.apps.byId(decodeSegment(match[1]));
  if (!app) throw new HttpError(404, 'Unknown app id');
  const method = req.method ?? 'GET';
  const body = method === 'POST' ? await readBody(req, ctx.maxRequestBodyBytes) : Buffer.alloc(0);
  verifyPusherSignature(app, method, url.pathname, url.searchParams, body, Math.floor(ctx.now() / 1000));
  if (!app.enabled) throw new HttpError(403, 'Application is disabled');
  if (app.apiRequestsPerSecond > 0) await enforceRate(ctx, `api-app:${app.id}`, app.apiRequestsPerSecond, app.id, CounterName.ApiRequestsRateLimited);
  if (method === 'GET' && match[2] === '/stats') {
    sendJson(res, 200, stats(ctx, app));
    return true;
  }
  const result = route(ctx.hub, ctx.idempotency, app, method, match[2], url, body);
  sendJson(res, 200, result instanceof Promise ? await result : result);
  return true;
}

/** Only a call that waits on the cluster returns a promise: publishing answers in the same turn. */
function route(hub: HubReadView & HubActions, keys: IdempotencyStore, app: App, method: string, rest: string, url: RequestTarget, body: Buffer): object | Promise<object> {
  if (method === 'POST' && rest === '/events') return triggerEvents(hub, keys, app, parseJsonObject(body));
  if (method === 'POST' && rest === '/batch_events') return triggerBatch(hub, keys, app, parseJsonObject(body));
  if (method === 'GET' && rest === '/channels') return listChannels(hub, app, url.searchParams);
  const channelMatch = /^\/channels\/([^/]+)(\/users|\/history)?$/.exec(rest);
  if (method === 'GET' && channelMatch) {
    const channel = decodeSegment(channelMatch[1]);
    if (!isValidChannelName(channel, app.maxChannelNameLength)) throw new HttpError(400, 'Invalid channel name');
    if (channelMatch[2] === '/history') {
      const q = url.searchParams;
      return readChannelHistory(hub, app, channel, { since: q.get('since'), epoch: q.get('epoch'), limit: q.get('limit') });
    }
    return channelMatch[2] ? presenceUsers(hub, app, channel) : channelInfo(hub, app, channel, url.searchParams);
  }
  const terminate = /^\/users\/([^/]+)\/terminate_connections$/.exec(rest);
  if (method === 'POST' && terminate) return hub.terminateUser(app.id, decodeSegment(terminate[1])).then(() => ({}));
  throw new HttpError(404, `No route for ${method} /apps/${app.id}${rest}`);
}

interface EventRequest {
  readonly message: Omit<ChannelMessage & { kind: 'event' }, 'channel'>;
  readonly channels: string[];
  readonly info: ReadonlySet<string>;
  /** A retry with this key within the window is acknowledged and not delivered again. */
  readonly key: string | undefined;
}

/** Validates one event of `events` or `batch_events`; `where` prefixes errors inside a batch. */
function parseEvent(app: App, body: Record<string, unknown>, where = ''): EventRequest {
  const fail = (status: number, message: string): never => {
    throw new HttpError(status, where + message);
  };
  const { name, data, channel, channels, socket_id: socketId, info, [IDEMPOTENCY_FIELD]: key } = body;
  if (typeof name !== 'string' || name.length === 0) fail(400, 'name must be a non-empty string');
  if ((name as string).length > app.maxEventNameLength) fail(400, `name is longer than ${app.maxEventNameLength} characters`);
  // pusher-js acts on these itself (a member_removed would drop a member from every roster).
  if (isReservedEventName(name as string)) fail(400, 'event names starting with pusher: or pusher_internal: are reserved');
  if (data === undefined) fail(400, 'data is required');
  // Pusher SDKs send data as a string; other clients may send JSON, which is kept as its text.
  let text = '';
  try {
    text = typeof data === 'string' ? data : JSON.stringify(data);
  } catch {
    fail(400, 'data is nested too deeply'); // JSON.parse takes any depth, JSON.stringify recurses
  }
  if (Buffer.byteLength(text) > app.maxEventDataBytes) fail(413, `data is larger than ${app.maxEventDataBytes} bytes`);

  let list: unknown[];
  if (channels !== undefined) {
    if (!Array.isArray(channels) || channels.length === 0) return fail(400, 'channels must be a non-empty array');
    list = channels;
  } else if (channel !== undefined) list = [channel];
  else return fail(400, 'channel or channels is required');
  if (list.length > 1) list = [...new Set(list)]; // a channel named twice still gets the event once
  if (list.length > app.maxEventChannels) fail(400, `at most ${app.maxEventChannels} channels per event`);
  for (const c of list) if (!isValidChannelName(c, app.maxChannelNameLength)) fail(400, `invalid channel name: ${describeValue(c)}`);
  if (list.length > 1 && list.some((c) => channelKind(c as string).isEncrypted)) fail(400, 'an encrypted channel must be the only channel of its event');

  if (socketId !== undefined && (typeof socketId !== 'string' || !SOCKET_ID.test(socketId))) fail(400, 'socket_id must look like 123.456');
  if (info !== undefined && typeof info !== 'string') fail(400, 'info must be a comma-separated string');
  return {
    message: { kind: 'event', event: name as string, data: text, ...(socketId === undefined ? {} : { exceptSocketId: socketId as string }) },
    channels: list as string[],
    info: parseInfo(info as string | undefined),
    key: checkIdempotencyKey(key, where),
  };
}

const NO_INFO: ReadonlySet<string> = new Set();

function parseInfo(info: string | undefined): ReadonlySet<string> {
  if (!info) return NO_INFO;
  return new Set(info.split(',').map((s) => s.trim()).filter(Boolean));
}

function publish(hub: HubReadView & HubActions, app: App, request: EventRequest): Record<string, Record<string, number>> | undefined {
  const { event, data, exceptSocketId } = request.message;
  // Built field by field: spreading the shared message per channel copied it through a slow path.
  for (const channel of request.channels) {
    hub.publish(app, exceptSocketId === undefined ? { kind: 'event', channel, event, data } : { kind: 'event', channel, event, data, exceptSocketId });
  }
  return attributesOnly(hub, app, request);
}

function triggerEvents(hub: HubReadView & HubActions, keys: IdempotencyStore, app: App, body: Record<string, unknown>): object | Promise<object> {
  const request = parseEvent(app, body);
  const answer = (channels: ReturnType<typeof publish>) => (channels ? { channels } : {});
  if (request.key === undefined) return answer(publish(hub, app, request));
  // A retry of a delivered event is answered as the first was, without delivering it again.
  return claimAll(keys, app, [request.key]).then(({ deliver, failed }) => {
    if (failed) throw idempotencyUnavailable();
    return answer(deliver[0] ? publish(hub, app, request) : attributesOnly(hub, app, request));
  });
}

/** The `info` attributes of a request's channels, for an acknowledged duplicate. */
function attributesOnly(hub: HubReadView & HubActions, app: App, request: EventRequest): ReturnType<typeof publish> {
  if (request.info.size === 0) return undefined;
  const out: Record<string, Record<string, number>> = {};
  for (const channel of request.channels) out[channel] = attributes(hub, app, channel, request.info);
  return out;
}

function triggerBatch(hub: HubReadView & HubActions, keys: IdempotencyStore, app: App, body: Record<string, unknown>): object | Promise<object> {
  const batch = body.batch;
  if (!Array.isArray(batch) || batch.length === 0) throw new HttpError(400, 'batch must be a non-empty array');
  if (batch.length > app.maxBatchSize) throw new HttpError(400, `at most ${app.maxBatchSize} events per batch`);
  // Validate the whole batch before publishing any of it: a bad event must not half-apply.
  const requests = batch.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new HttpError(400, `batch[${i}]: must be an object`);
    return parseEvent(app, item as Record<string, unknown>, `batch[${i}]: `);
  });
  const answer = (results: ReturnType<typeof publish>[]) =>
    requests.every((r) => r.info.size === 0) ? {} : { batch: results.map((channels) => (channels ? Object.values(channels)[0] ?? {} : {})) };
  if (requests.every((r) => r.key === undefined)) return answer(requests.map((r) => publish(hub, app, r)));
  return claimAll(keys, app, requests.map((r) => r.key)).then(({ deliver, failed }) => {
    const results = requests.map((r, i) => (deliver[i] ? publish(hub, app, r) : attributesOnly(hub, app, r)));
    if (failed) throw idempotencyUnavailable();
    return answer(results);
  });
}

/** user_count for presence channels, subscription_count for the others (Pusher's rules). */
function attributes(hub: HubReadView & HubActions, app: App, channel: string, info: ReadonlySet<string>): Record<string, number> {
  const state = hub.channelInfo(app.id, channel);
  const out: Record<string, number> = {};
  if (info.has('user_count') && state.userCount !== undefined) out.user_count = state.userCount;
  if (info.has('subscription_count')) out.subscription_count = state.subscriptionCount;
  return out;
}

function listChannels(hub: HubReadView & HubActions, app: App, query: URLSearchParams): object {
  const prefix = query.get('filter_by_prefix') ?? '';
  const info = parseInfo(query.get('info') ?? undefined);
  for (const attr of info) if (attr !== 'user_count') throw new HttpError(400, `unsupported info attribute: ${attr}`);
  if (info.has('user_count') && !prefix.startsWith('presence-')) {
    throw new HttpError(400, 'info=user_count needs filter_by_prefix=presence-');
  }
  const channels: Record<string, { user_count?: number }> = {};
  for (const [name, state] of hub.channels(app.id, prefix)) {
    channels[name] = info.has('user_count') && state.userCount !== undefined ? { user_count: state.userCount } : {};
  }
  return { channels };
}

function channelInfo(hub: HubReadView & HubActions, app: App, channel: string, query: URLSearchParams): object {
  const info = parseInfo(query.get('info') ?? undefined);
  const kind = channelKind(channel);
  for (const attr of info) {
    if (attr !== 'user_count' && attr !== 'subscription_count' && attr !== 'cache') throw new HttpError(400, `unsupported info attribute: ${attr}`);
  }
  if (info.has('user_count') && !kind.isPresence) throw new HttpError(400, 'info=user_count is only for presence channels');
  if (info.has('cache') && !kind.isCache) throw new HttpError(400, 'info=cache is only for cache channels');
  const state = hub.channelInfo(app.id, channel);
  const out: Record<string, unknown> = { occupied: state.occupied };
  if (info.has('user_count')) out.user_count = state.userCount ?? 0;
  if (info.has('subscription_count')) out.subscription_count = state.subscriptionCount;
  if (info.has('cache') && state.cache && state.cache.message.kind === 'event') {
    const m = state.cache.message;
    out.cache = { data: typeof m.data === 'string' ? m.data : m.data.toString('base64'), ttl: state.cache.ttlSeconds };
  }
  return out;
}

function presenceUsers(hub: HubReadView & HubActions, app: App, channel: string): object {
  if (!channelKind(channel).isPresence) throw new HttpError(400, 'users are only listed for presence channels');
  return { users: hub.presenceUserIds(app.id, channel).map((id) => ({ id })) };
}

/** Refusals and losses counted on this node, plus cluster-wide connection count (GET /apps/{id}/stats). */
export function stats({ hub, counters }: Pick<PusherApiContext, 'hub' | 'counters'>, app: App): StatsSnapshot {
  return statsOf(hub, counters, app.id);
}
