import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppRegistry } from '../apps/registry.js';
import { HTTP_FAILED, type RefusalLog } from '../refusal-log.js';
import type { App } from '../core/app.js';
import { isReservedEventName, isValidNativeChannelName, serverToUserChannel, socketChannel } from '../core/channels.js';
import { newClaimId, type ClaimStore } from '../core/claims.js';
import type { ConnectionTarget } from '../core/bus.js';
import type { HubActions, HubReadView } from '../core/hub-view.js';
import type { ChannelMessage } from '../core/message.js';
import { CounterName } from '../core/counters.js';
import { describeValue } from '../util/json.js';
import type { RequestTarget } from '../util/request-target.js';
import { listDeadLetters, replayDeadLetters, type DeadLetterAccess } from './dead-letters.js';
import { stats } from './pusher-api.js';
import { verifyPusherSignature } from './pusher-signature.js';
import { enforceIpRate, enforceRate, type ApiRateContext } from './rate-limit.js';
import { ApiError, INTERNAL_ERROR_MESSAGE, errorReply, nativeErrorBody } from './errors.js';
import { readBody, sendJson } from './respond.js';
import { readChannelHistory } from './history-read.js';
import { IDEMPOTENCY_HEADER, checkIdempotencyKey, claimAll, idempotencyUnavailable } from './idempotent-publish.js';
import type { IdempotencyStore } from '../core/idempotency.js';

export interface NativeApiContext extends ApiRateContext {
  /** Where failures that are not the client's are logged, throttled. */
  readonly refusals: RefusalLog;
  /** The hub as the API sees it: reads of channels and users, publishing, cluster commands. */
  readonly hub: HubReadView & HubActions;
  readonly apps: AppRegistry;
  readonly claims: ClaimStore;
  readonly maxRequestBodyBytes: number;
  readonly now: () => number;
  readonly webhooks: DeadLetterAccess;
  /** Where idempotency keys of publishes are recorded (the engine's store). */
  readonly idempotency: IdempotencyStore;
}

export const NATIVE_ROUTES: ReadonlySet<string> = new Set(['POST /broadcast', 'POST /internal/broadcast', 'POST /send', 'POST /disconnect', 'GET /info', 'GET /history', 'POST /claim', 'GET /stats', 'GET /webhooks/dead-letters', 'POST /webhooks/dead-letters/replay']);

/**
 * The native HTTP API for backends in any language: cadsock's broadcast and dSock's send,
 * disconnect, info and claim. Every call names its app by API token or Pusher signature;
 * there is no anonymous broadcast. Returns false for paths that are not this API's.
 */
export async function handleNativeApi(req: IncomingMessage, res: ServerResponse, url: RequestTarget, ctx: NativeApiContext): Promise<boolean> {
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  if (!NATIVE_ROUTES.has(route)) return false;
  try {
    const ipLimit = enforceIpRate(ctx, req);
    if (ipLimit) await ipLimit;
    const body = req.method === 'POST' ? await readBody(req, ctx.maxRequestBodyBytes) : Buffer.alloc(0);
    const app = await authenticate(req, url, body, ctx);
    const appLimit = enforceRate(ctx, `api-app:${app.id}`, app.apiRequestsPerSecond, app.id, CounterName.ApiRequestsRateLimited);
    if (appLimit) await appLimit;
    const params = new Params(url.searchParams, req.headers['content-type'], body, route !== 'POST /send');
    const key = checkIdempotencyKey(req.headers[IDEMPOTENCY_HEADER]);
    const result = key === undefined ? await dispatch(route, app, params, body, ctx) : await dispatchOnce(key, route, app, params, body, ctx);
    sendJson(res, 200, { success: true, ...result });
  } catch (err) {
    const reply = errorReply(err);
    if (reply) sendJson(res, reply.status, nativeErrorBody(reply), reply.headers);
    else {
      // A store that is down (Redis, JetStream) ends here: answer in this API's shape, log the cause.
      ctx.refusals.note('', HTTP_FAILED, { err, route });
      sendJson(res, 500, nativeErrorBody({ status: 500, message: INTERNAL_ERROR_MESSAGE, errorCode: 'INTERNAL_ERROR', headers: {} }));
    }
  }
  return true;
}

async function authenticate(req: IncomingMessage, url: RequestTarget, body: Buffer, ctx: NativeApiContext): Promise<App> {
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const token = bearer ?? url.searchParams.get('token');
  if (token) {
    const app = await ctx.apps.byApiToken(token);
    if (!app) throw new ApiError(401, 'INVALID_AUTHORIZATION', 'Invalid API token');
    return checkEnabled(app);
  }
  const key = url.searchParams.get('auth_key');
  if (key) {
    const app = await ctx.apps.byKey(key);
    if (!app) throw new ApiError(401, 'INVALID_AUTHORIZATION', 'Unknown auth_key');
    try {
      verifyPusherSignature(app, req.method ?? 'GET', url.pathname, url.searchParams, body, Math.floor(ctx.now() / 1000));
    } catch (err) {
      throw new ApiError(401, 'INVALID_AUTHORIZATION', (err as Error).message);
    }
    return checkEnabled(app);
  }
  throw new ApiError(401, 'INVALID_AUTHORIZATION', 'Give an API token (Authorization: Bearer or ?token=) or a Pusher signature');
}

function checkEnabled(app: App): App {
  if (!app.enabled) throw new ApiError(403, 'APP_DISABLED', 'Application is disabled');
  return app;
}

/** Parameters from the query string, then from a form or JSON body (dSock uses the query). */
class Params {
  // No prototype: a body's own "__proto__" key must stay a key, not become the object's prototype.
  private readonly fromBody: Record<string, unknown> = Object.create(null) as Record<string, unknown>;

  constructor(
    private readonly query: URLSearchParams,
    contentType: string | undefined,
    body: Buffer,
    bodyHoldsParams: boolean,
  ) {
    if (!bodyHoldsParams || body.length === 0) return;
    const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
    if (type === 'application/x-www-form-urlencoded') {
      for (const [k, v] of new URLSearchParams(body.toString('utf8'))) this.fromBody[k] = v;
    } else if (type === 'application/json' || type === '' || type === 'text/plain') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new ApiError(400, 'INVALID_BODY', 'Body must be JSON or a form');
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new ApiError(400, 'INVALID_BODY', 'Body must be a JSON object');
      Object.assign(this.fromBody, parsed);
    } else {
      throw new ApiError(415, 'INVALID_BODY', 'Body must be application/json or application/x-www-form-urlencoded');
    }
  }

  raw(name: string): unknown {
    return this.query.get(name) ?? this.fromBody[name];
  }

  string(name: string): string | undefined {
    const v = this.raw(name);
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v === 'number') return String(v);
    if (typeof v !== 'string') throw new ApiError(400, 'INVALID_PARAMETER', `${name} must be a string`);
    return v;
  }
}

/**
 * A publish (/broadcast, /send) with an `Idempotency-Key`: checked in full first, delivered only
 * if no publish of the app named the key within the window; a retry is answered `duplicate: true`.
 */
async function dispatchOnce(key: string, route: string, app: App, p: Params, body: Buffer, ctx: NativeApiContext): Promise<Record<string, unknown>> {
  const publishes = route === 'POST /send' ? [sendMessage(app, p, body)] : route.endsWith('/broadcast') ? broadcastMessages(app, p) : undefined;
  if (publishes === undefined) return dispatch(route, app, p, body, ctx); // not a publish: the key means nothing
  const { deliver, failed } = await claimAll(ctx.idempotency, app, [key]);
  if (failed) throw idempotencyUnavailable();
  if (!deliver[0]) return { duplicate: true };
  for (const m of publishes) ctx.hub.publish(app, m);
  return {};
}

async function dispatch(route: string, app: App, p: Params, body: Buffer, ctx: NativeApiContext): Promise<Record<string, unknown>> {
  switch (route) {
    case 'POST /broadcast':
    case 'POST /internal/broadcast':
      return broadcast(app, p, ctx.hub);
    case 'POST /send':
      return send(app, p, body, ctx.hub);
    case 'POST /disconnect':
      return disconnect(app, p, ctx);
    case 'GET /info':
      return info(app, p, ctx);
    case 'GET /history': {
      const channel = p.string('channel');
      if (channel === undefined) throw new ApiError(400, 'MISSING_CHANNEL', 'channel is required');
      if (!isValidNativeChannelName(channel, app.maxChannelNameLength)) throw new ApiError(400, 'INVALID_CHANNEL', `invalid channel name: ${describeValue(channel)}`);
      return readChannelHistory(ctx.hub, app, channel, { since: p.string('since'), epoch: p.string('epoch'), limit: p.string('limit') });
    }
    case 'GET /stats':
      return { ...stats(ctx, app) };
    case 'GET /webhooks/dead-letters':
      return listDeadLetters(app, p.string('limit'), ctx.webhooks);
    case 'POST /webhooks/dead-letters/replay':
      return replayDeadLetters(app, p.raw('ids'), ctx.webhooks);
    default:
      return claim(app, p, ctx);
  }
}

function broadcast(app: App, p: Params, hub: HubReadView & HubActions): Record<string, unknown> {
  for (const m of broadcastMessages(app, p)) hub.publish(app, m);
  return {};
}

/** The messages of a /broadcast, checked in full (one per channel). */
function broadcastMessages(app: App, p: Params): ChannelMessage[] {
  const list = p.raw('channels');
  const channels: unknown[] = list !== undefined ? (Array.isArray(list) ? list : [list]) : [p.raw('channel')];
  if (channels.length === 0 || channels[0] === undefined) throw new ApiError(400, 'MISSING_CHANNEL', 'channel or channels is required');
  if (channels.length > app.maxEventChannels) throw new ApiError(400, 'TOO_MANY_CHANNELS', `at most ${app.maxEventChannels} channels`);
  for (const c of channels) {
    if (!isValidNativeChannelName(c, app.maxChannelNameLength)) throw new ApiError(400, 'INVALID_CHANNEL', `invalid channel name: ${describeValue(c)}`);
  }
  const data = p.raw('data') ?? p.raw('message');
  if (data === undefined) throw new ApiError(400, 'MISSING_MESSAGE', 'data (or message) is required');
  let text: string;
  try {
    text = typeof data === 'string' ? data : JSON.stringify(data);
  } catch {
    throw new ApiError(400, 'INVALID_MESSAGE', 'data is nested too deeply'); // JSON.parse takes any depth, JSON.stringify recurses
  }
  if (Buffer.byteLength(text) > app.maxEventDataBytes) throw new ApiError(413, 'MESSAGE_TOO_LARGE', `data is larger than ${app.maxEventDataBytes} bytes`);
  const event = eventName(app, p);
  const except = p.string('socket_id');
  return (channels as string[]).map((channel) => ({
    kind: 'event',
    channel,
    event,
    data: text,
    dataIsJson: typeof data !== 'string',
    ...(except === undefined ? {} : { exceptSocketId: except }),
  }));
}

function target(p: Params): ConnectionTarget {
  const id = p.string('id');
  if (id !== undefined) return { id };
  const user = p.string('user');
  if (user === undefined) throw new ApiError(400, 'MISSING_CONNECTION_OR_USER', 'Give a connection id or a user');
  return { user, session: p.string('session') };
}

/** The `event` parameter (default `message`) of /broadcast and /send. */
function eventName(app: App, p: Params): string {
  const event = p.string('event') ?? 'message';
  if (event.length > app.maxEventNameLength) throw new ApiError(400, 'INVALID_EVENT', `event is longer than ${app.maxEventNameLength} characters`);
  if (isReservedEventName(event)) throw new ApiError(400, 'INVALID_EVENT', 'event names starting with pusher: or pusher_internal: are reserved');
  return event;
}

function send(app: App, p: Params, body: Buffer, hub: HubReadView & HubActions): Record<string, unknown> {
  hub.publish(app, sendMessage(app, p, body));
  return {};
}

/** The message of a /send, checked. */
function sendMessage(app: App, p: Params, body: Buffer): ChannelMessage {
  const to = target(p);
  const type = p.string('type');
  if (type !== 'text' && type !== 'binary') throw new ApiError(400, 'INVALID_MESSAGE_TYPE', 'type must be text or binary');
  if (body.length > app.maxEventDataBytes) throw new ApiError(413, 'MESSAGE_TOO_LARGE', `message is larger than ${app.maxEventDataBytes} bytes`);
  const data = type === 'text' ? body.toString('utf8') : body;
  const event = eventName(app, p);
  const channel = 'id' in to ? socketChannel(to.id) : serverToUserChannel(to.user);
  const session = 'user' in to ? to.session : undefined;
  return { kind: 'event', channel, event, data, ...(session === undefined ? {} : { session }) };
}

async function disconnect(app: App, p: Params, ctx: NativeApiContext): Promise<Record<string, unknown>> {
  const to = target(p);
  const disconnected = await ctx.hub.disconnect(app.id, to);
  const keepClaims = p.string('keepClaims');
  if ('user' in to && keepClaims !== 'true' && keepClaims !== '1') await ctx.claims.remove(app.id, to.user, to.session);
  return { disconnected };
}

async function info(app: App, p: Params, ctx: NativeApiContext): Promise<Record<string, unknown>> {
  const to = target(p);
  const connections = (await ctx.hub.describe(app.id, to)).map((c) => ({
    id: c.id,
    worker: c.node,
    lastPing: Math.floor(c.lastActivityAt / 1000),
    user: c.user,
    ...(c.session === undefined ? {} : { session: c.session }),
    protocol: c.protocol,
    ...(c.metadata === undefined ? {} : { metadata: c.metadata }),
  }));
  const claims = 'user' in to ? await ctx.claims.list(app.id, to.user, to.session) : [];
  return { connections, claims: claims.map(({ id, expiration, user, session }) => ({ id, expiration, user, ...(session === undefined ? {} : { session }) })) };
}

async function claim(app: App, p: Params, ctx: NativeApiContext): Promise<Record<string, unknown>> {
  const user = p.string('user');
  if (user === undefined) throw new ApiError(400, 'USER_ID_REQUIRED', 'user is required');
  const now = Math.floor(ctx.now() / 1000);
  let expiration = now + app.claimTtlSeconds;
  const exp = p.string('expiration');
  const duration = p.string('duration');
  if (exp !== undefined) {
    if (!/^-?\d+$/.test(exp)) throw new ApiError(400, 'INVALID_EXPIRATION', 'expiration must be an integer (epoch seconds)');
    expiration = Number(exp);
    if (expiration < 0) throw new ApiError(400, 'NEGATIVE_EXPIRATION', 'expiration must not be negative');
    if (!Number.isSafeInteger(expiration * 1000)) throw new ApiError(400, 'INVALID_EXPIRATION', 'expiration is too far in the future');
  } else if (duration !== undefined) {
    if (!/^-?\d+$/.test(duration)) throw new ApiError(400, 'INVALID_DURATION', 'duration must be an integer (seconds)');
    if (Number(duration) < 0) throw new ApiError(400, 'NEGATIVE_DURATION', 'duration must not be negative');
    expiration = now + Number(duration);
    if (!Number.isSafeInteger(expiration * 1000)) throw new ApiError(400, 'INVALID_DURATION', 'duration is too long');
  }
  const session = p.string('session');
  const id = p.string('id') ?? newClaimId();
  const channelList = p.raw('channels');
  const channels = typeof channelList === 'string' ? channelList.split(',').filter(Boolean) : Array.isArray(channelList) ? channelList : undefined;
  if (channels && !channels.every((c): c is string => typeof c === 'string' && c.length > 0)) {
    throw new ApiError(400, 'INVALID_PARAMETER', 'channels must be a comma-separated list or an array of channel names');
  }
  const created = { id, appId: app.id, user, session, expiration, ...(channels ? { channels } : {}) };
  if (!(await ctx.claims.create(created))) throw new ApiError(400, 'CLAIM_ID_ALREADY_USED', 'That claim id is already in use');
  return { claim: { id, expiration, user, ...(session === undefined ? {} : { session }), ...(channels ? { channels } : {}) } };
}
