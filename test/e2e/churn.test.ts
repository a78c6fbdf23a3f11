import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import type { Hub } from '../../src/core/hub.js';
import type { StateDelta } from '../../src/core/state-delta.js';
import { RawClient, serverSdk } from '../helpers/clients.js';
import { NativeClient, answerJson, api, connectNative, makeJwt, nowSeconds, refusal, subscribeNative } from '../helpers/native.js';
import { RawSocket } from '../helpers/raw-frames.js';
import { PROTOCOL_QUERY, subscribeRaw, subscribeSigned } from '../helpers/raw-pusher.js';
import { startServer } from '../helpers/server.js';
import { signedRequest, type Credentials } from '../helpers/signed-request.js';
import { errorOf, rawSignIn, rawSignedIn } from '../helpers/users.js';
import { until } from '../helpers/wait.js';
import { startReceiver, type WebhookEvent, type WebhookReceiver } from '../helpers/webhook-receiver.js';

/**
 * Churn: a few hundred connections over both protocols do everything that makes per-connection,
 * per-channel, per-user or per-address state, then go away in every way a connection can (close
 * handshake, FIN, TCP reset, closed by the server); afterwards nothing may be left for them.
 *
 * Long-lived "anchor" connections keep the busiest channels, presence rosters, users and
 * watchlists alive through the churn: a leak there would otherwise be hidden by the whole entry
 * being dropped when its last holder goes. So each phase compares the server's state with what
 * it was before that phase (a failure names the phase and the field that grew), and once the
 * anchors have left, everything must be empty.
 *
 * State is read through public views: the hub's methods, the REST API, the native /info and
 * /stats, the webhooks the server sends, the per-IP limit's answers and how long shutdown takes.
 * `hubInternals` is the one reach into private state, for what has no public view at all.
 */

const JWT_SECRET = 'churn-jwt-secret-0123456789';
const TOKEN = 'churn-api-token-0123456789';
const HOOK_TOKEN = 'churn-hook-token-0123456789';
const PER_IP = 3;

const MAIN = {
  id: 'churn',
  key: 'churn-key',
  secret: 'churn-secret',
  enableClientMessages: true,
  enableSubscriptionCount: true,
  clientEventsPerSecond: 2,
  clientMessagesPerSecond: 15,
  clientPublish: true,
  // Long enough never to fire here: every connection still gets an idle timer to clean up.
  idleTimeoutSeconds: 60,
  jwtSecret: JWT_SECRET,
  apiToken: TOKEN,
};
const HOOKED = { id: 'hooked', key: 'hooked-key', secret: 'hooked-secret', apiToken: HOOK_TOKEN, idleTimeoutSeconds: 60 };
/** Queues smaller than a loopback socket's buffers, so stalled readers overflow them soon. */
const SLOW_CLOSE = { id: 'slowc', key: 'slowc-key', secret: 'slowc-secret', maxQueueBytes: 16 * 1024, slowConsumerPolicy: 'close' as const };
const SLOW_WAIT = { id: 'sloww', key: 'sloww-key', secret: 'sloww-secret', maxQueueBytes: 16 * 1024, slowConsumerPolicy: 'wait' as const, slowConsumerWaitMs: 200 };
const QUOTA = { id: 'quota', key: 'quota-key', secret: 'quota-secret', maxConnections: 2, idleTimeoutSeconds: 60 };
const IDLE = { id: 'idle', key: 'idle-key', secret: 'idle-secret', idleTimeoutSeconds: 1 };
/** Only for the per-address probes: nothing else connects to it. */
const PLAIN = { id: 'plain', key: 'plain-key', secret: 'plain-secret' };
const APPS: readonly Credentials[] = [MAIN, HOOKED, SLOW_CLOSE, SLOW_WAIT, QUOTA, IDLE, PLAIN];
const APP_IDS: readonly unknown[] = APPS.map((app) => app.id);

const OCCUPANCY_EVENTS = ['channel_occupied', 'channel_vacated', 'member_added', 'member_removed'] as const;

// ---------------------------------------------------------------------------------------------
// What the churn touched: the names the views look up, the addresses the per-IP probe tries.

const seen = new Map<string, { channels: Set<string>; users: Set<string> }>();

function note(appId: string, channels: readonly string[], users: ReadonlyArray<string | undefined> = []): void {
  let s = seen.get(appId);
  if (!s) seen.set(appId, (s = { channels: new Set(), users: new Set() }));
  for (const c of channels) s.channels.add(c);
  for (const u of users) if (u !== undefined) s.users.add(u);
}

const addresses = new Set<string>();

/** A client address, as the trusted proxy (loopback) reports it in X-Forwarded-For. */
function address(group: number, n: number): string {
  const ip = `10.${group}.${n >> 8}.${n & 255}`;
  addresses.add(ip);
  return ip;
}

// ---------------------------------------------------------------------------------------------
// Views of the server's state

/** The hub's state of one app, through its public methods; only non-empty entries are listed. */
function appView(hub: Hub, appId: string): Record<string, unknown> {
  const names = seen.get(appId) ?? { channels: new Set<string>(), users: new Set<string>() };
  const named: Record<string, string> = {};
  const members: Record<string, string[]> = {};
  // Every name the churn used, not only what hub.channels() lists: a count or a roster can
  // outlive its channel's listing (and #server-to-user-* channels are never listed).
  for (const name of names.channels) {
    const info = hub.channelInfo(appId, name);
    if (info.subscriptionCount !== 0 || (info.userCount ?? 0) !== 0) named[name] = `${info.subscriptionCount} sockets, ${info.userCount ?? '-'} users`;
    const ids = hub.presenceUserIds(appId, name);
    if (ids.length > 0) members[name] = ids.sort();
  }
  const users: Record<string, number> = {};
  for (const user of names.users) {
    const sockets = hub.userConnections(appId, user).size;
    if (sockets !== 0) users[user] = sockets;
  }
  return {
    connections: [...hub.connections(appId)].length,
    clusterConnections: hub.connectionCountOf(appId),
    localChannels: hub.localChannelCount(appId),
    listed: Object.fromEntries([...hub.channels(appId)].map(([name, i]) => [name, `${i.subscriptionCount} sockets, ${i.userCount ?? '-'} users`])),
    named,
    members,
    users,
    // What this node tells the cluster it holds: subscription, presence and online tallies.
    owned: hub.ownedState().filter((d) => d.appId === appId).flatMap(describeOwned).sort(),
    internals: hubInternals(hub, appId),
  };
}

function describeOwned(d: StateDelta): string[] {
  switch (d.kind) {
    case 'subscriptions':
      return [`subscribed ${d.channel}: ${d.count}`];
    case 'presence':
      return [`present ${d.channel}: ${d.userId}`];
    case 'user':
      return [`online ${d.userId}`];
    case 'connections': // `connections` above says it
    case 'cache': // kept per channel name for its TTL, not per connection
      return [];
  }
}

function serverView(server: Switchboard): Record<string, unknown> {
  return { size: server.hub.size, ...Object.fromEntries(APPS.map((app) => [app.id, appView(server.hub, app.id)])) };
}

const EMPTY_APP = {
  connections: 0,
  clusterConnections: 0,
  localChannels: 0,
  listed: {},
  named: {},
  members: {},
  users: {},
  owned: [],
  internals: { watchers: {}, presence: {} },
};

/**
 * The one reach into private state. No public method shows the hub's watchlist index (watched
 * user → sockets watching) or a presence channel's socket → user and user → sockets maps, and a
 * closed connection left in them is otherwise unseen: it costs memory, and watchlist notices
 * written to a dead socket. The shapes are asserted, so a rename fails here instead of the check
 * passing on nothing.
 */
function hubInternals(hub: Hub, appId: string): { watchers: Record<string, number>; presence: Record<string, string> } {
  const out = { watchers: {} as Record<string, number>, presence: {} as Record<string, string> };
  const apps = (hub as unknown as { apps: unknown }).apps;
  assert.ok(apps instanceof Map, 'Hub#apps is not a Map any more: update hubInternals()');
  for (const key of apps.keys()) assert.ok(APP_IDS.includes(key), `Hub#apps is not keyed by app id any more (${String(key)}): update hubInternals()`);
  const state = apps.get(appId) as { watchers: unknown; channels: unknown } | undefined;
  if (state === undefined) return out; // no connection of this app has come yet
  assert.ok(state.watchers instanceof Map, 'AppState#watchers is not a Map any more: update hubInternals()');
  assert.ok(state.channels instanceof Map, 'AppState#channels is not a Map any more: update hubInternals()');
  for (const [watched, sockets] of state.watchers as Map<string, unknown>) {
    assert.ok(sockets instanceof Set, 'AppState#watchers values are not Sets any more: update hubInternals()');
    out.watchers[watched] = sockets.size;
  }
  for (const [name, channel] of state.channels as Map<string, { memberOf: unknown; localSockets: unknown }>) {
    if (!name.startsWith('presence-')) continue;
    const { memberOf, localSockets } = channel;
    assert.ok(memberOf instanceof Map && localSockets instanceof Map, 'ChannelState#memberOf/localSockets are not Maps any more: update hubInternals()');
    const perUser = [...(localSockets as Map<string, number>)].map(([user, n]) => `${user}×${n}`).sort();
    out.presence[name] = `${memberOf.size} sockets: ${perUser.join(' ')}`;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Clients

interface Dialed {
  readonly ws: WebSocket;
  /** The TCP socket under ws, for ending with a reset: ws offers a close handshake and a FIN only. */
  readonly tcp: Socket;
}

function dial(server: Switchboard, path: string, ip: string, headers: Record<string, string> = {}): Dialed {
  let tcp: Socket | undefined;
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, {
    headers: { 'x-forwarded-for': ip, ...headers },
    createConnection: () => (tcp = createConnection({ host: '127.0.0.1', port: server.port })),
  });
  // Resets and refusals also emit 'error'; a life asserts how it ended from 'close' instead.
  ws.on('error', () => undefined);
  assert.ok(tcp, 'ws opens its TCP connection in its constructor');
  return { ws, tcp };
}

function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume();
      ws.terminate();
      reject(new Error(`upgrade refused: ${res.statusCode}`));
    });
    ws.once('close', () => reject(new Error('closed before the upgrade')));
  });
}

type Ending = 'close' | 'fin' | 'reset';

/** Leaves with a close handshake, a FIN (no close frame), or a TCP reset; resolves when closed. */
async function leave(c: { ws: WebSocket; closed: Promise<number> }, tcp: Socket, how: Ending): Promise<void> {
  if (how === 'close') c.ws.close();
  else if (how === 'fin') c.ws.terminate();
  else tcp.resetAndDestroy();
  await c.closed;
}

/**
 * Runs `count` lives, `width` at a time. Worker w gives all its lives the address (group, w), so an
 * address holds one live connection of the churn at a time (two while a close is under way).
 * Resolves with the failures, each naming its life.
 */
async function waves(count: number, width: number, group: number, life: (i: number, ip: string) => Promise<void>): Promise<string[]> {
  let next = 0;
  const failed: string[] = [];
  const worker = async (w: number): Promise<void> => {
    const ip = address(group, w);
    while (next < count) {
      const i = next++;
      try {
        await life(i, ip);
      } catch (err) {
        failed.push(`life ${i}: ${(err as Error).message.slice(0, 300)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, (_, w) => worker(w)));
  return failed;
}

/** The app's counters as GET /apps/{id}/stats reports them. */
async function stats(server: Switchboard, app: Credentials): Promise<{ connections: number; counters: Record<string, number>; serverCounters: Record<string, number> }> {
  const reply = await signedRequest(server, { path: '/stats', app });
  assert.equal(reply.status, 200, reply.text);
  return reply.json as { connections: number; counters: Record<string, number>; serverCounters: Record<string, number> };
}

// ---------------------------------------------------------------------------------------------

describe('churn: connections that went away leave nothing behind', { timeout: 60_000 }, () => {
  let server: Switchboard;
  let receiver: WebhookReceiver;
  let hook: WebhookReceiver;
  let sdk: Pusher;
  /** Auth webhook answers held back until the test releases them, by life. */
  const heldAnswers = new Map<string, ServerResponse>();
  const anchors: Array<{ client: RawClient | NativeClient; tcp: Socket }> = [];

  /**
   * Waits until the hub holds the anchors' connections only. A close the client has seen may not
   * have been handled by the server yet, and nothing tells a client when it has.
   */
  const settled = async (): Promise<void> => {
    await until(() => server.hub.size === anchors.length, `the hub to hold only the ${anchors.length} anchors`, 5000);
  };

  before(async () => {
    receiver = await startReceiver();
    // The auth webhook: the client names the outcome in a cookie (one of the headers forwarded).
    hook = await startReceiver({ path: '/auth', respond: (req: IncomingMessage, res: ServerResponse) => {
      const cookie = new URLSearchParams(String(req.headers.cookie ?? '').replace(/; /g, '&'));
      const mode = cookie.get('mode');
      if (mode === 'deny') return answerJson(res, 401, {});
      if (mode === 'hold') {
        heldAnswers.set(cookie.get('life') ?? '', res);
        return;
      }
      answerJson(res, 200, { id: cookie.get('user'), channels: ['presence-*', 'private-*'] });
    } });
    server = await startServer({
      trustedProxies: ['127.0.0.1'],
      maxConnectionsPerIp: PER_IP,
      // Also counted: upgrades then wait for the limiter, so every admission is asynchronous.
      connectionAttemptsPerIpPerSecond: 1000,
      webhookLeaveDelayMs: 100,
      webhookBatchMs: 20,
      shutdownTimeoutMs: 5000,
      apps: [
        { ...MAIN, webhooks: [{ url: receiver.url, batch: true, events: [...OCCUPANCY_EVENTS] }] },
        { ...HOOKED, authWebhookUrl: hook.url, authWebhookTimeoutMs: 5000 },
        SLOW_CLOSE,
        SLOW_WAIT,
        QUOTA,
        IDLE,
        PLAIN,
      ],
    });
    sdk = serverSdk(server, MAIN);

    // Pusher anchor: user u0 watching u1, u3 and w0, in every kind of channel the churn uses.
    {
      const { ws, tcp } = dial(server, `/app/${MAIN.key}?${PROTOCOL_QUERY}`, address(8, 1));
      const a = new RawClient(ws);
      await opened(ws);
      await rawSignedIn(a, sdk, { id: 'u0', watchlist: ['u1', 'u3', 'w0'] });
      const presence = JSON.stringify({ user_id: 'u0' });
      await Promise.all([
        ...['#server-to-user-u0', 'pub-all', 'pub-0', 'cache-0'].map((ch) => subscribeRaw(a, ch).then((m) => assert.equal(m.event, 'pusher_internal:subscription_succeeded', ch))),
        subscribeSigned(a, 'private-0', undefined, MAIN),
        ...[0, 1, 2, 3].map((k) => subscribeSigned(a, `presence-room-${k}`, presence, MAIN)),
      ]);
      anchors.push({ client: a, tcp });
      note(MAIN.id, ['#server-to-user-u0', 'pub-all', 'pub-0', 'cache-0', 'private-0', 'presence-room-0', 'presence-room-1', 'presence-room-2', 'presence-room-3'], ['u0']);
    }
    // Native anchor: JWT user n0, sharing channels and rosters with the Pusher clients.
    {
      const jwt = await makeJwt(JWT_SECRET, { sub: 'n0', channels: ['presence-*', 'private-*'], exp: nowSeconds() + 600 });
      const { ws, tcp } = dial(server, `/ws/${MAIN.key}?jwt=${jwt}&ack=1`, address(8, 2));
      const n = new NativeClient(ws);
      await opened(ws);
      const channels = ['pub-all', 'pub-n0', 'private-0', 'presence-room-0', 'presence-room-1'];
      await Promise.all(channels.map((ch) => subscribeNative(n, ch)));
      anchors.push({ client: n, tcp });
      note(MAIN.id, channels, ['n0']);
    }
    // Auth-webhook anchor: h0 in presence-hook-0.
    {
      const { ws, tcp } = dial(server, `/ws/${HOOKED.key}?ack=1`, address(8, 3), { cookie: 'mode=ok; user=h0' });
      const h = new NativeClient(ws);
      await opened(ws);
      await subscribeNative(h, 'presence-hook-0');
      anchors.push({ client: h, tcp });
      note(HOOKED.id, ['presence-hook-0'], ['h0']);
    }
    // The private views read something real, or comparing them would prove nothing.
    const internals = hubInternals(server.hub, MAIN.id);
    assert.deepEqual(internals.watchers, { u1: 1, u3: 1, w0: 1 });
    assert.equal(internals.presence['presence-room-0'], '2 sockets: n0×1 u0×1');
  });

  after(async () => {
    for (const { tcp } of anchors) tcp.destroy();
    await server?.close();
    await receiver?.close();
    for (const res of heldAnswers.values()) res.destroy();
    await hook?.close();
  });

  it('Pusher churn leaves the hub as it found it: channels, rosters, users, watchlists, tallies', async () => {
    const before = serverView(server);
    const failed = await waves(120, 20, 1, async (i, ip) => {
      const { ws, tcp } = dial(server, `/app/${MAIN.key}?${PROTOCOL_QUERY}`, ip);
      const c = new RawClient(ws);
      await opened(ws);
      const socketId = await c.socketId();
      const mode = i % 5;
      const user = mode === 3 ? `t${i}` : `u${i % 10}`; // u0…u9: one user on several sockets, the anchor's too
      const priv = `private-${i % 5}`;
      const presence = `presence-room-${i % 4}`;
      const channels = ['pub-all', `pub-${i % 7}`, priv, presence, `cache-${i % 3}`];
      note(MAIN.id, [...channels, `#server-to-user-${user}`], [user, `w${i}`]);
      const signIn = (): Promise<void> => rawSignIn(c, sdk, { id: user, user_info: { n: i }, watchlist: [`u${(i + 3) % 10}`, `w${i}`, user] });
      const subscribeAll = (): Array<Promise<unknown>> => [
        subscribeRaw(c, 'pub-all'),
        subscribeRaw(c, `pub-${i % 7}`),
        subscribeSigned(c, priv, undefined, MAIN),
        subscribeSigned(c, presence, JSON.stringify({ user_id: user, user_info: { n: i } }), MAIN),
        subscribeRaw(c, `cache-${i % 3}`),
      ];

      if (mode === 4) {
        // Gone in the middle of it all, with answers still on their way.
        await signIn();
        const pending = subscribeAll();
        for (const p of pending) p.catch(() => undefined); // the reset rejects them
        if (i % 3 === 1) await c.event('pusher:signin_success');
        if (i % 3 === 2) await pending[3];
        await leave(c, tcp, 'reset');
        return;
      }
      if (i % 2 === 0 || mode === 3) {
        await signIn();
        await c.event('pusher:signin_success');
        const own = await subscribeRaw(c, `#server-to-user-${user}`);
        assert.equal(own.event, 'pusher_internal:subscription_succeeded', JSON.stringify(own));
      }
      for (const result of await Promise.all(subscribeAll())) {
        const m = result as { event: string };
        assert.equal(m.event, 'pusher_internal:subscription_succeeded', JSON.stringify(m));
      }
      // 2 per second: the third and fourth are refused (4301), the connection stays.
      for (let k = 0; k < 4; k++) c.send({ event: 'client-hi', channel: priv, data: { k } });
      await c.next((m) => m.event === 'pusher:error' && errorOf(m).code === 4301);
      if (i % 3 === 0) c.send({ event: 'pusher:unsubscribe', data: { channel: `pub-${i % 7}` } });
      if (i % 3 === 1) c.send({ event: 'pusher:unsubscribe', data: { channel: presence } });
      c.send({ event: 'pusher:ping', data: {} });
      await c.event('pusher:pong'); // the unsubscribes are done

      if (mode < 3) return leave(c, tcp, (['close', 'fin', 'reset'] as const)[mode]);
      // Closed by the backend: the REST API by user, or the native API by socket id.
      const reply =
        i % 2 === 0
          ? (await signedRequest(server, { method: 'POST', path: `/users/${user}/terminate_connections`, body: {}, app: MAIN })).status
          : (await api(server, 'POST', '/disconnect', { token: TOKEN, form: { id: socketId } })).status;
      assert.equal(reply, 200);
      assert.equal(await c.closed, 4009);
    });
    assert.deepEqual(failed, []);
    await settled();
    assert.deepEqual(serverView(server), before);
  });

  it('native churn (anonymous, JWT, claims, publishes past the rate limit) leaves the hub as it found it, and no claim behind', async () => {
    const before = serverView(server);
    const rateLimited = (await stats(server, MAIN)).counters.client_messages_rate_limited ?? 0;
    const failed = await waves(90, 18, 2, async (i, ip) => {
      const mode = i % 4;
      let path: string;
      let user: string | undefined;
      if (i % 3 === 0) path = `/ws/${MAIN.key}?channel=pub-n${i % 5}&ack=1`;
      else if (i % 3 === 1) {
        user = mode === 3 ? `d${i}` : `n${i % 6}`;
        const jwt = await makeJwt(JWT_SECRET, { sub: user, channels: ['presence-*', 'private-*'], info: { i }, exp: nowSeconds() + 60 });
        path = `/ws/${MAIN.key}?jwt=${jwt}&format=envelope`;
      } else {
        user = mode === 3 ? `d${i}` : `c${i % 6}`;
        const r = await api(server, 'POST', '/claim', { token: TOKEN, form: { user, channels: 'presence-*,private-*' } });
        assert.equal(r.status, 200, JSON.stringify(r.json));
        path = `/ws/${MAIN.key}?claim=${(r.json.claim as { id: string }).id}&ack=1`;
      }
      const { ws, tcp } = dial(server, path, ip);
      const c = new NativeClient(ws);
      await opened(ws);
      const channels = ['pub-all', `pub-n${i % 5}`, ...(user ? [`presence-room-${i % 4}`, `private-${i % 5}`] : [])];
      note(MAIN.id, channels, [user]);
      await Promise.all(channels.map((ch) => subscribeNative(c, ch)));
      if (i % 2 === 0) {
        c.send({ action: 'unsubscribe', channel: 'pub-all' });
        await c.ack('unsubscribed', 'pub-all');
      }
      // 15 actions per second: some of these are refused, and that answer comes after the rest.
      for (let k = 0; k < 20; k++) c.send({ action: 'publish', channel: `pub-n${i % 5}`, data: { k } });
      await c.error('RATE_LIMITED');

      if (mode < 3) return leave(c, tcp, (['close', 'fin', 'reset'] as const)[mode]);
      if (!user) return leave(c, tcp, 'reset');
      const r = await api(server, 'POST', '/disconnect', { token: TOKEN, form: { user } });
      assert.equal(r.status, 200);
      assert.equal(await c.closed, 4009);
    });
    assert.deepEqual(failed, []);
    await settled();
    assert.deepEqual(serverView(server), before);
    assert.ok(((await stats(server, MAIN)).counters.client_messages_rate_limited ?? 0) > rateLimited, 'the native rate limit was reached');
    // Each claim was used by its connection; GET /info lists what is left of a user's.
    const users = [...(seen.get(MAIN.id)?.users ?? [])].filter((u) => /^[cd]\d/.test(u));
    const left = await Promise.all(
      users.map(async (user) => {
        const r = await api(server, 'GET', '/info', { token: TOKEN, query: { user } });
        return { user, connections: (r.json.connections as unknown[]).length, claims: (r.json.claims as unknown[]).length };
      }),
    );
    assert.deepEqual(left.filter((u) => u.connections + u.claims > 0), []);
  });

  it('auth-webhook churn (accepted, refused, gone while the webhook decides) leaves the hub as it found it', async () => {
    const before = serverView(server);
    const refusedBefore = (await stats(server, HOOKED)).counters.connections_refused_auth ?? 0;
    const failed = await waves(36, 12, 3, async (i, ip) => {
      const mode = (['ok', 'deny', 'hold'] as const)[i % 3];
      const user = `h${i % 4}`;
      const path = `/ws/${HOOKED.key}?ack=1`;
      const headers = { cookie: `mode=${mode}; user=${user}; life=${i}` };
      if (mode === 'deny') {
        assert.equal((await refusal(server, path, { headers: { 'x-forwarded-for': ip, ...headers } })).status, 401);
        return;
      }
      const { ws, tcp } = dial(server, path, ip, headers);
      const c = new NativeClient(ws);
      if (mode === 'hold') {
        // Gone (FIN or reset) while the webhook still decides; the answer comes after.
        await until(() => heldAnswers.has(String(i)), `the auth webhook call of life ${i}`);
        if (i % 2 === 0) ws.terminate();
        else tcp.resetAndDestroy();
        await c.closed;
        const res = heldAnswers.get(String(i)) as ServerResponse;
        answerJson(res, 200, { id: user, channels: ['presence-*'] });
        return;
      }
      await opened(ws);
      const channel = `presence-hook-${i % 2}`;
      note(HOOKED.id, [channel], [user]);
      await subscribeNative(c, channel);
      await leave(c, tcp, i % 2 === 0 ? 'close' : 'reset');
    });
    assert.deepEqual(failed, []);
    // The held answers went out before this connection's: once it is served, they were read.
    const { ws, tcp } = dial(server, `/ws/${HOOKED.key}?ack=1`, address(3, 99), { cookie: 'mode=ok; user=h9' });
    const last = new NativeClient(ws);
    await opened(ws);
    await leave(last, tcp, 'close');
    await settled();
    assert.deepEqual(serverView(server), before);
    assert.equal((await stats(server, HOOKED)).counters.connections_refused_auth, refusedBefore + 12);
  });

  it('connections refused for the app quota (4004), over both protocols, leave nothing: not even a channel they asked for before their close arrived', async () => {
    const before = serverView(server);
    // The quota (2) is taken by one connection of each protocol.
    const p = dial(server, `/app/${QUOTA.key}?${PROTOCOL_QUERY}`, address(4, 100));
    const pusherHolder = new RawClient(p.ws);
    await opened(p.ws);
    await subscribeRaw(pusherHolder, 'held-p');
    const n = dial(server, `/ws/${QUOTA.key}?ack=1`, address(4, 101));
    const nativeHolder = new NativeClient(n.ws);
    await opened(n.ws);
    await subscribeNative(nativeHolder, 'held-n');
    note(QUOTA.id, ['held-p', 'held-n']);

    const failed = await waves(20, 5, 4, async (k, ip) => {
      const channel = `ghost-${k}`;
      note(QUOTA.id, [channel]);
      const { ws } = dial(server, k % 2 ? `/ws/${QUOTA.key}?ack=1` : `/app/${QUOTA.key}?${PROTOCOL_QUERY}`, ip);
      const c = k % 2 ? new NativeClient(ws) : new RawClient(ws);
      // The 4004 close frame comes with the handshake, and ws reads it in the next tick: only a
      // send from the 'open' listener itself crosses it (ws drops later ones, with an error).
      const frame = k % 2 ? { action: 'subscribe', channel } : { event: 'pusher:subscribe', data: { channel } };
      let crossed = false;
      ws.once('open', () => ws.send(JSON.stringify(frame), (err) => (crossed = !err)));
      await opened(ws);
      assert.equal(await c.closed, 4004);
      assert.ok(crossed, 'the subscribe left before the close frame was read');
    });
    // Read while the holders keep the app's state alive, asserted after they left, so a failure
    // here leaves nothing open for the next test.
    const listed = await signedRequest(server, { path: '/channels', app: QUOTA });
    const refused = (await stats(server, QUOTA)).counters.connections_refused_quota;
    await Promise.all([leave(pusherHolder, p.tcp, 'close'), leave(nativeHolder, n.tcp, 'reset')]);
    await settled();
    assert.deepEqual(failed, []);
    assert.deepEqual(listed.json, { channels: { 'held-p': {}, 'held-n': {} } });
    assert.equal(refused, 20);
    assert.deepEqual(serverView(server), before);
  });

  it('slow consumers (close and wait policies, both protocols) and sign-ins whose answer overflows the queue leave nothing', async () => {
    const before = serverView(server);
    const stalled: RawSocket[] = [];
    let k = 0;
    for (const app of [SLOW_CLOSE, SLOW_WAIT]) {
      note(app.id, ['big']);
      for (let j = 0; j < 3; j++) {
        const p = await RawSocket.open(server.port, `/app/${app.key}?${PROTOCOL_QUERY}`, { headers: { 'x-forwarded-for': address(5, k++) } });
        p.send({ event: 'pusher:subscribe', data: { channel: 'big' } });
        await p.message((m) => m.event === 'pusher_internal:subscription_succeeded');
        const n = await RawSocket.open(server.port, `/ws/${app.key}?channel=big&ack=1`, { headers: { 'x-forwarded-for': address(5, k++) } });
        await n.message((m) => m.type === 'subscribed');
        p.pause();
        n.pause();
        stalled.push(p, n);
      }
    }
    // Bounded: 8 KiB frames until every stalled reader was closed (a few MiB each at most).
    const payload = 'x'.repeat(8 * 1024);
    const occupied = (): number => server.hub.localChannelCount(SLOW_CLOSE.id) + server.hub.localChannelCount(SLOW_WAIT.id);
    for (let round = 0; round < 20_000 && occupied() > 0; round++) {
      for (const app of [SLOW_CLOSE, SLOW_WAIT]) server.broadcast('big', payload, { appId: app.id });
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(occupied(), 0, 'every stalled reader was closed');
    for (const s of stalled) s.destroy();

    // signin_success echoes user_data: 20 KiB of user_info does not fit a 16 KiB queue (4100).
    const slowSdk = serverSdk(server, SLOW_CLOSE);
    for (let j = 0; j < 4; j++) {
      const { ws } = dial(server, `/app/${SLOW_CLOSE.key}?${PROTOCOL_QUERY}`, address(5, k++));
      const c = new RawClient(ws);
      await opened(ws);
      note(SLOW_CLOSE.id, [], [`big${j}`, `w-big${j}`]);
      await rawSignIn(c, slowSdk, { id: `big${j}`, user_info: { bio: 'x'.repeat(20 * 1024) }, watchlist: [`w-big${j}`] });
      assert.equal(await c.closed, 4100);
    }
    await settled();
    assert.deepEqual(serverView(server), before);
    assert.equal((await stats(server, SLOW_CLOSE)).counters.slow_consumer_closes, 6 + 4);
    assert.equal((await stats(server, SLOW_WAIT)).counters.slow_consumer_closes, 6);
  });

  it('connections closed for idling (4202) leave nothing, and no idle timer outlives a connection that left first', async () => {
    const before = serverView(server);
    const path = (k: number): string => (k % 2 ? `/ws/${IDLE.key}` : `/app/${IDLE.key}?${PROTOCOL_QUERY}`);
    // First, connections that leave before their idle timeout: their timers were created first,
    // so they would fire before the others' if they were not cleared.
    const early = await Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        const d = dial(server, path(k), address(6, k));
        const c = k % 2 ? new NativeClient(d.ws) : new RawClient(d.ws);
        await opened(d.ws);
        return { c, tcp: d.tcp, how: (['close', 'fin', 'reset'] as const)[k % 3] };
      }),
    );
    const idle = await Promise.all(
      Array.from({ length: 6 }, async (_, k) => {
        const d = dial(server, path(k), address(6, 10 + k));
        const c = k % 2 ? new NativeClient(d.ws) : new RawClient(d.ws);
        await opened(d.ws);
        return c;
      }),
    );
    await Promise.all(early.map(({ c, tcp, how }) => leave(c, tcp, how)));
    assert.deepEqual(await Promise.all(idle.map((c) => c.closed)), [4202, 4202, 4202, 4202, 4202, 4202]);
    await settled();
    assert.deepEqual(serverView(server), before);
    assert.equal((await stats(server, IDLE)).counters.idle_connections_closed, 6);
  });

  it('after the anchors leave too, the hub holds nothing, by its methods and by the REST and native APIs', async () => {
    const [pusher, native, hooked] = anchors;
    assert.ok(pusher && native && hooked);
    await Promise.all([leave(pusher.client, pusher.tcp, 'close'), leave(native.client, native.tcp, 'fin'), leave(hooked.client, hooked.tcp, 'reset')]);
    anchors.length = 0;
    await settled();

    assert.deepEqual(serverView(server), { size: 0, ...Object.fromEntries(APPS.map((app) => [app.id, EMPTY_APP])) });
    for (const app of APPS) {
      const listed = await signedRequest(server, { path: '/channels', app });
      assert.deepEqual(listed.json, { channels: {} }, `GET /apps/${app.id}/channels`);
      assert.equal((await stats(server, app)).connections, 0, `GET /apps/${app.id}/stats`);
    }
    for (const channel of ['presence-room-0', 'presence-room-1', 'presence-room-2', 'presence-room-3']) {
      const users = await signedRequest(server, { path: `/channels/${channel}/users`, app: MAIN });
      assert.deepEqual(users.json, { users: [] }, `GET /apps/${MAIN.id}/channels/${channel}/users`);
    }
    const hookUsers = await signedRequest(server, { path: '/channels/presence-hook-0/users', app: HOOKED });
    assert.deepEqual(hookUsers.json, { users: [] });
    for (const [app, token] of [
      [MAIN, TOKEN],
      [HOOKED, HOOK_TOKEN],
    ] as const) {
      const users = [...(seen.get(app.id)?.users ?? [])];
      const infos = await Promise.all(users.map((user) => api(server, 'GET', '/info', { token, query: { user } }).then((r) => ({ user, json: r.json }))));
      assert.deepEqual(
        infos.filter(({ json }) => (json.connections as unknown[]).length + (json.claims as unknown[]).length > 0),
        [],
        `GET /info?user= on ${app.id}`,
      );
    }
  });

  it('refused upgrades (429) and every connection before leave no per-address count: each address can again open exactly maxConnectionsPerIp', async () => {
    const ip = address(7, 1);
    const headers = { 'x-forwarded-for': ip };
    const refusedBefore = (await stats(server, PLAIN)).serverCounters.connections_refused_ip_limit ?? 0;
    const held = await Promise.all(
      Array.from({ length: PER_IP }, async (_, k) => {
        const d = dial(server, k % 2 ? `/ws/${PLAIN.key}` : `/app/${PLAIN.key}?${PROTOCOL_QUERY}`, ip);
        const c = k % 2 ? new NativeClient(d.ws) : new RawClient(d.ws);
        await opened(d.ws);
        return { c, tcp: d.tcp };
      }),
    );
    const answers: number[] = [];
    for (let k = 0; k < 6; k++) answers.push((await refusal(server, k % 2 ? `/ws/${PLAIN.key}` : `/app/${PLAIN.key}?${PROTOCOL_QUERY}`, { headers })).status);
    await Promise.all(held.map(({ c, tcp }, k) => leave(c, tcp, (['close', 'fin', 'reset'] as const)[k % 3])));
    assert.deepEqual(answers, [429, 429, 429, 429, 429, 429]);
    assert.equal((await stats(server, PLAIN)).serverCounters.connections_refused_ip_limit, refusedBefore + 6);

    // An address still counted for a socket that is gone gets 429 before its maxConnectionsPerIp-th.
    // A socket's count goes when its TCP connection has closed, which no client sees: each
    // address gets a bounded number of tries.
    const probe = async (ip: string): Promise<string | undefined> => {
      const headers = { 'x-forwarded-for': ip };
      const deadline = Date.now() + 3000;
      for (;;) {
        const tries = await Promise.allSettled(Array.from({ length: PER_IP }, () => connectNative(server, `/ws/${PLAIN.key}`, { headers })));
        const open = tries.flatMap((t) => (t.status === 'fulfilled' ? [t.value] : []));
        const extra = open.length === PER_IP ? await refusal(server, `/ws/${PLAIN.key}`, { headers }).catch((err: Error) => err) : undefined;
        await Promise.all(
          open.map((c) => {
            c.ws.terminate();
            return c.closed;
          }),
        );
        if (open.length === PER_IP && !(extra instanceof Error) && extra?.status === 429) return undefined;
        if (Date.now() > deadline) {
          return `${ip}: ${open.length} of ${PER_IP} accepted, then ${extra instanceof Error ? extra.message : (extra?.status ?? 'nothing tried')}`;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const all = [...addresses];
    assert.ok(all.length > 50, `addresses used: ${all.length}`);
    const problems: string[] = [];
    for (let i = 0; i < all.length; i += 16) {
      for (const p of await Promise.all(all.slice(i, i + 16).map(probe))) if (p) problems.push(p);
    }
    assert.deepEqual(problems, []);
    await settled();
  });

  it('every channel_occupied and member_added webhook is followed by its channel_vacated and member_removed', async () => {
    const key = (e: WebhookEvent): string => (e.name.startsWith('member') ? `${e.channel} ${e.user_id}` : e.channel);
    const sequences = (): Map<string, string[]> => {
      const out = new Map<string, string[]>();
      for (const e of receiver.delivered()) {
        const k = key(e);
        out.set(k, [...(out.get(k) ?? []), e.name]);
      }
      return out;
    };
    const open = (): string[] =>
      [...sequences()].filter(([, names]) => names.at(-1) === 'channel_occupied' || names.at(-1) === 'member_added').map(([k]) => k);
    // Leaves are held back for webhookLeaveDelayMs, then batched.
    await receiver.until(() => open().length === 0, 'a leave for every join').catch(() => undefined);
    assert.deepEqual(open(), [], 'joined, never left');
    // Each key alternates join, leave, join…: no leave twice, no join twice.
    const broken = [...sequences()].filter(([, names]) => names.some((n, j) => (j % 2 === 0) !== (n === 'channel_occupied' || n === 'member_added')));
    assert.deepEqual(broken, []);
    assert.ok(sequences().size > 20, `webhooks seen for ${sequences().size} channels and members`);
    const { counters } = await stats(server, MAIN);
    assert.equal(counters.webhook_events_dropped, 0);
    assert.equal(counters.webhook_failures, 0);
  });

  it('shuts down at once: no socket and no webhook left for shutdown to wait for', async () => {
    // shutdownTimeoutMs is 5 s: shutdown waits that long for a socket the transport still holds.
    const started = Date.now();
    await server.close();
    const took = Date.now() - started;
    assert.ok(took < 2000, `shutdown took ${took} ms`);
  });
});
