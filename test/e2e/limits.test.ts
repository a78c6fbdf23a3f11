import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { type RawClient, serverSdk } from '../helpers/clients.js';
import { answerJson, api, connectNative, refusal, subscribeNative, type NativeClient } from '../helpers/native.js';
import { Opcode, RawSocket, buildFrame, closePayload, rawHttp } from '../helpers/raw-frames.js';
import { decoded, flush, rawClient, subscribeRaw, subscribeSigned } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { pusherSignature, send, signedPath, signedRequest, type Credentials, type Reply } from '../helpers/signed-request.js';
import { until } from '../helpers/wait.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

/**
 * Every limit: its refusal (exact code, status and message), that a client just under it is
 * served, and its counter where there is one. All test clients share the loopback address, so
 * the per-IP limits get servers of their own.
 */

type Counters = Record<string, number>;

/** The app's counters as GET /apps/{id}/stats reports them. */
async function stats(server: Switchboard, app: Credentials = APP): Promise<{ connections: number; counters: Counters }> {
  const reply = await signedRequest(server, { path: '/stats', app });
  assert.equal(reply.status, 200, reply.text);
  return reply.json as { connections: number; counters: Counters };
}

/** Waits for the start of the next wall-clock second: the rate limits count in fixed one-second windows. */
async function nextSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}

/** A WebSocket upgrade over raw TCP that the server answers with HTTP; the whole answer. */
async function upgradeAnswer(server: Switchboard, path: string): Promise<{ status: number | undefined; head: string; json: unknown }> {
  const r = await rawHttp(server.port, [
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ]);
  return { status: r.status, head: r.head, json: JSON.parse(r.body) };
}

/** `promise`, or a rejection naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `run` (a burst of `limit` × 3 calls sent together) at the start of a second and splits the
 * results. The limits count in fixed one-second windows: when the burst stayed within one second
 * exactly `limit` get through; on a slow machine it may reach into the next window, where at most
 * `limit` more do, so at least `limit` are refused either way.
 */
async function burst<T>(run: () => Promise<T[]>, limit: number, ok: (r: T) => boolean): Promise<{ passed: T[]; refused: T[] }> {
  await nextSecond();
  const second = Math.floor(Date.now() / 1000);
  const results = await run();
  const oneWindow = Math.floor(Date.now() / 1000) === second;
  const passed = results.filter(ok);
  const refused = results.filter((r) => !ok(r));
  if (oneWindow) assert.equal(passed.length, limit, `${limit} of ${results.length} within one second`);
  else assert.ok(passed.length >= limit && passed.length <= 2 * limit, `${passed.length} of ${results.length} over two windows`);
  return { passed, refused };
}

function header(head: string, name: string): string | undefined {
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

/** A Pusher connection the server refuses after the handshake: its pusher:error and close code. */
async function refusedPusher(server: Switchboard, key: string = APP.key): Promise<{ error: unknown; code: number; reason: string }> {
  const c = await rawClient(server, key);
  const code = await c.closed;
  const error = c.messages.find((m) => m.event === 'pusher:error');
  assert.ok(error, 'a pusher:error precedes the close');
  return { error: decoded(error), code, reason: c.closeReason };
}

const PUSHER_PATH = `/app/${APP.key}?protocol=7&client=raw&version=1.0`;

// Independent servers, so the groups run side by side; most of the time is the limits' own clocks.
describe('limits', { concurrency: true }, () => {
  describe('maxConnections (server-wide): Pusher 4100, native 503 OVER_CAPACITY', () => {
    let server: Switchboard;
    const open: Array<RawClient | NativeClient> = [];
    before(async () => {
      server = await startServer({ maxConnections: 2 });
    });
    after(async () => {
      for (const c of open) c.close();
      await server.close();
    });

    it('serves up to the cap, refuses beyond it, counts the refusals, and takes clients again when one leaves', async () => {
      const first = await rawClient(server);
      open.push(first, await connectNative(server, '/ws'));
      await first.socketId();
      assert.deepEqual(await refusedPusher(server), {
        error: { code: 4100, message: 'Server is over capacity, try again later' },
        code: 4100,
        reason: 'Server is over capacity, try again later',
      });
      assert.deepEqual(await refusal(server, '/ws'), { status: 503, body: { success: false, error: 'Server is over capacity', errorCode: 'OVER_CAPACITY' } });
      assert.equal((await stats(server)).counters.connections_refused_capacity, 2);

      first.close();
      await until(() => server.hub.size === 1, 'the server to see the close');
      const again = await rawClient(server);
      open.push(again);
      assert.match(await again.socketId(), /^\d+\.\d+$/);
    });

    it('checks the cap again after the auth webhook: a burst of slow-to-authenticate native upgrades does not pass it', async (t) => {
      const hook = await startReceiver({ path: '/auth', respond: (_req, res) => void setTimeout(() => answerJson(res, 200, { id: 'someone' }), 300) });
      t.after(() => hook.close());
      const capped = await startServer({ maxConnections: 2, apps: [{ ...APP, authWebhookUrl: hook.url }] });
      t.after(() => capped.close());
      const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => connectNative(capped, '/ws')));
      const opened = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
      for (const c of opened) c.close();
      assert.equal(opened.length, 2);
      for (const o of outcomes) if (o.status === 'rejected') assert.match(String(o.reason), /upgrade refused: 503 .*OVER_CAPACITY/);
    });
  });

  describe('per-app maxConnections: 4004', () => {
    const QUOTA = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', maxConnections: 2 };
    let server: Switchboard;
    const open: Array<RawClient | NativeClient> = [];
    before(async () => {
      server = await startServer({ apps: [QUOTA, APP] });
    });
    after(async () => {
      for (const c of open) c.close();
      await server.close();
    });

    it('refuses the app’s third connection with 4004 (Pusher) and close 4004 (native), counted for the app; other apps are unaffected', async () => {
      const a = await rawClient(server, QUOTA.key);
      const b = await rawClient(server, QUOTA.key);
      open.push(a, b);
      await a.socketId();
      await b.socketId();
      assert.deepEqual(await refusedPusher(server, QUOTA.key), {
        error: { code: 4004, message: 'Application is over its connection quota' },
        code: 4004,
        reason: 'Application is over its connection quota',
      });
      const native = await connectNative(server, `/ws/${QUOTA.key}`);
      assert.equal(await native.closed, 4004);
      assert.equal(native.closeReason, 'Application is over its connection quota');

      const other = await rawClient(server, APP.key);
      open.push(other);
      await other.socketId();
      const s = await stats(server, QUOTA);
      assert.equal(s.connections, 2);
      assert.equal(s.counters.connections_refused_quota, 2);
      assert.equal((await stats(server, APP)).counters.connections_refused_quota, 0);
    });
  });

  describe('per-app maxConnections: what a refused connection sends', () => {
    const FULL = { id: 'full-id', key: 'full-key', secret: 'full-secret', maxConnections: 1 };
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apps: [FULL] });
    });
    after(() => server.close());

    it('leaves no channel behind when a refused native connection subscribes before its close arrives', async (t) => {
      const holder = await connectNative(server, `/ws/${FULL.key}?ack=1`);
      t.after(() => holder.close());
      await subscribeNative(holder, 'held-room'); // the quota is full, and the hub knows this one
      // The 4004 close frame comes with the handshake; the client's subscribe crosses it.
      const refused = await RawSocket.open(server.port, `/ws/${FULL.key}`, { replyToClose: false });
      t.after(() => refused.destroy());
      refused.send({ action: 'subscribe', channel: 'ghost-room' });
      assert.equal((await refused.closed()).closeCode, 4004);
      refused.write(buildFrame({ opcode: Opcode.Close, payload: closePayload(4004) }));
      await refused.ended; // the server read the subscribe before this close
      const reply = await signedRequest(server, { path: '/channels', app: FULL });
      assert.deepEqual(reply.json, { channels: { 'held-room': {} } });
    });
  });

  describe('maxConnectionsPerIp: 429 before the upgrade', () => {
    let server: Switchboard;
    const open: RawClient[] = [];
    before(async () => {
      server = await startServer({ maxConnectionsPerIp: 2 });
    });
    after(async () => {
      for (const c of open) c.close();
      await server.close();
    });

    it('serves two connections from one address, refuses a third on either protocol, and takes one again after a close', async () => {
      open.push(await rawClient(server), await rawClient(server));
      const body = { error: 'Too many connections from this address (at most 2)' };
      const pusher = await upgradeAnswer(server, PUSHER_PATH);
      assert.equal(pusher.status, 429);
      assert.deepEqual(pusher.json, body);
      assert.deepEqual(await refusal(server, '/ws'), { status: 429, body });
      // Refused before an app is known: counted under "".
      assert.equal(server.hub.counters.snapshot('').connections_refused_ip_limit, 2);

      (open[0]).close();
      await until(() => server.hub.size === 1, 'the server to see the close');
      const again = await rawClient(server);
      open.push(again);
      assert.match(await again.socketId(), /^\d+\.\d+$/);
    });
  });

  describe('connectionAttemptsPerIpPerSecond: 429 with Retry-After: 1', () => {
    let server: Switchboard;
    const open: RawClient[] = [];
    const sockets: RawSocket[] = [];
    before(async () => {
      server = await startServer({ connectionAttemptsPerIpPerSecond: 3 });
    });
    after(async () => {
      for (const c of open) c.close();
      for (const s of sockets) s.destroy();
      await server.close();
    });

    it('lets three attempts a second through and refuses the others with 429 and Retry-After: 1; the next second’s get through', async () => {
      const { passed, refused } = await burst(() => Promise.all(Array.from({ length: 9 }, () => RawSocket.attempt(server.port, PUSHER_PATH))), 3, (o) => o.ok);
      for (const o of passed) if (o.ok) sockets.push(o.socket);
      for (const r of refused) {
        assert.ok(!r.ok);
        assert.equal(r.status, 429);
        assert.equal(header(r.head, 'Retry-After'), '1');
        assert.deepEqual(JSON.parse(r.body), { error: 'Too many connection attempts from this address, slow down' });
      }
      assert.equal(server.hub.counters.snapshot('').connections_refused_rate, refused.length);

      await nextSecond();
      const later = await rawClient(server);
      open.push(later);
      assert.match(await later.socketId(), /^\d+\.\d+$/);
    });
  });

  describe('apiRequestsPerIpPerSecond: 429 with Retry-After on the HTTP APIs', () => {
    const TOKEN = 'ip-limit-token-0123456789';
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apiRequestsPerIpPerSecond: 4, apps: [{ ...APP, apiToken: TOKEN }] });
    });
    after(() => server.close());

    it('answers four API calls a second from one address (REST and native together), refuses the others with 429 and Retry-After, and leaves health checks alone', async () => {
      let up: Reply | undefined;
      const { refused } = await burst(
        async () => {
          const [replies, health] = await Promise.all([
            Promise.all([...Array.from({ length: 11 }, () => signedRequest(server, { path: '/channels' })), api(server, 'GET', '/stats', { token: TOKEN })]),
            send(server, 'GET', '/up'),
          ]);
          up = health;
          return replies;
        },
        4,
        (r) => r.status === 200,
      );
      for (const r of refused) {
        assert.equal(r.status, 429);
        // Only REST replies carry their headers here; at most one refused call is the native one.
        if ('headers' in r) {
          assert.equal(r.headers['retry-after'], '1');
          assert.deepEqual(r.json, { error: 'Rate limit reached: at most 4 requests per second' });
        }
      }
      assert.equal(up?.status, 200, 'health checks are not limited');
      assert.equal(server.hub.counters.snapshot('').api_requests_rate_limited, refused.length);

      await nextSecond();
      assert.equal((await signedRequest(server, { path: '/channels' })).status, 200);
    });
  });

  describe('apiRequestsPerIpPerSecond on the native API', () => {
    const TOKEN = 'ip-limit-native-token-0123456789';
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apiRequestsPerIpPerSecond: 4, apps: [{ ...APP, apiToken: TOKEN }] });
    });
    after(() => server.close());

    it('refuses calls over the per-IP budget in the native API’s error shape', async () => {
      const { refused } = await burst(() => Promise.all(Array.from({ length: 8 }, () => api(server, 'GET', '/stats', { token: TOKEN }))), 4, (r) => r.status === 200);
      assert.ok(refused.length > 0);
      for (const r of refused) {
        assert.equal(r.status, 429);
        assert.deepEqual(r.json, { success: false, error: 'Rate limit reached: at most 4 requests per second', errorCode: 'RATE_LIMITED' });
      }
    });
  });

  describe('per-app apiRequestsPerSecond: 429 with Retry-After', () => {
    const LIMITED = { id: 'limited-id', key: 'limited-key', secret: 'limited-secret', apiRequestsPerSecond: 3, apiToken: 'limited-token-0123456789' };
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apps: [LIMITED, APP] });
    });
    after(() => server.close());

    it('counts REST and native calls of the app together, refuses those over 3 a second with 429, counts them, and leaves other apps alone', async () => {
      let others: Reply[] = [];
      const { refused } = await burst(
        async () => {
          const [app, other] = await Promise.all([
            Promise.all([
              ...Array.from({ length: 6 }, () => signedRequest(server, { path: '/channels', app: LIMITED })),
              ...Array.from({ length: 3 }, () => api(server, 'GET', '/stats', { token: LIMITED.apiToken })),
            ]),
            Promise.all(Array.from({ length: 5 }, () => signedRequest(server, { path: '/channels' }))),
          ]);
          others = other;
          return app;
        },
        3,
        (r) => r.status === 200,
      );
      for (const r of refused) {
        if ('headers' in r) {
          assert.equal(r.status, 429);
          assert.equal(r.headers['retry-after'], '1');
          assert.deepEqual(r.json, { error: 'Rate limit reached: at most 3 requests per second' });
        } else {
          assert.deepEqual(r, { status: 429, json: { success: false, error: 'Rate limit reached: at most 3 requests per second', errorCode: 'RATE_LIMITED' } });
        }
      }
      assert.deepEqual(others.map((r) => r.status), [200, 200, 200, 200, 200], 'another app has its own budget');

      await nextSecond();
      const s = await stats(server, LIMITED);
      assert.equal(s.counters.api_requests_rate_limited, refused.length);
      assert.equal((await stats(server, APP)).counters.api_requests_rate_limited, 0);
    });
  });

  describe('refused authentication is counted', () => {
    const CLOSED = { id: 'closed-id', key: 'closed-key', secret: 'closed-secret', allowAnonymous: false };
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apps: [CLOSED] });
    });
    after(() => server.close());

    it('refuses a native upgrade without credentials with 401 and counts it in connections_refused_auth (read with a Pusher-signed GET /stats)', async () => {
      assert.deepEqual(await refusal(server, `/ws/${CLOSED.key}`), {
        status: 401,
        body: { success: false, error: 'No claim, JWT or session given', errorCode: 'MISSING_AUTHENTICATION' },
      });
      const params = new Map([
        ['auth_key', CLOSED.key],
        ['auth_timestamp', String(Math.floor(Date.now() / 1000))],
        ['auth_version', '1.0'],
      ]);
      params.set('auth_signature', pusherSignature(CLOSED.secret, 'GET', '/stats', params));
      const reply = await send(server, 'GET', `/stats?${new URLSearchParams([...params]).toString()}`);
      assert.equal(reply.status, 200, reply.text);
      const body = reply.json as { success: boolean; connections: number; counters: Counters };
      assert.equal(body.success, true);
      assert.equal(body.connections, 0);
      assert.equal(body.counters.connections_refused_auth, 1);
    });
  });

  describe('channel limits: maxChannelSubscribers and maxChannelsPerConnection', () => {
    const SMALL = { ...APP, maxChannelSubscribers: 2, maxChannelsPerConnection: 3, apiToken: 'channel-limits-token-0123' };
    let server: Switchboard;
    const open: Array<RawClient | NativeClient> = [];
    before(async () => {
      server = await startServer({ apps: [SMALL] });
    });
    after(async () => {
      for (const c of open) c.close();
      await server.close();
    });

    it('refuses a channel’s third subscriber with LimitReached 403 (Pusher) and CHANNEL_FULL (native); a freed place is taken again', async () => {
      const [a, b, c] = [await rawClient(server), await rawClient(server), await rawClient(server)];
      open.push(a, b, c);
      assert.equal((await subscribeRaw(a, 'room')).event, 'pusher_internal:subscription_succeeded');
      assert.equal((await subscribeRaw(b, 'room')).event, 'pusher_internal:subscription_succeeded');
      const full = await subscribeRaw(c, 'room');
      assert.equal(full.event, 'pusher:subscription_error');
      assert.deepEqual(decoded(full), { type: 'LimitReached', error: 'The channel is full (2 subscribers)', status: 403 });
      assert.equal((await subscribeRaw(c, 'other-room')).event, 'pusher_internal:subscription_succeeded', 'other channels are not full');

      const native = await connectNative(server, '/ws?ack=1');
      open.push(native);
      native.send({ action: 'subscribe', channel: 'room' });
      assert.deepEqual(await native.error('CHANNEL_FULL', 'room'), { type: 'error', code: 'CHANNEL_FULL', message: 'The channel is full (2 subscribers)', channel: 'room' });

      a.send({ event: 'pusher:unsubscribe', data: { channel: 'room' } });
      await until(() => server.hub.channelInfo(APP.id, 'room').subscriptionCount === 1, 'the unsubscribe');
      await subscribeNative(native, 'room');
      // A broadcast reaches both remaining subscribers.
      await flush(b, serverSdk(server), 'room', 'marker');
      await native.text('{}');
    });

    it('refuses a connection’s fourth channel with LimitReached 403 (Pusher) and TOO_MANY_CHANNELS (native); re-subscribing is not a new channel', async () => {
      const client = await rawClient(server);
      open.push(client);
      for (const ch of ['c1', 'c2', 'c3']) assert.equal((await subscribeRaw(client, ch)).event, 'pusher_internal:subscription_succeeded');
      const fourth = await subscribeRaw(client, 'c4');
      assert.deepEqual(decoded(fourth), { type: 'LimitReached', error: 'A connection may subscribe to at most 3 channels', status: 403 });
      assert.equal(fourth.event, 'pusher:subscription_error');
      client.messages.length = 0;
      assert.equal((await subscribeRaw(client, 'c2')).event, 'pusher_internal:subscription_succeeded', 'already subscribed: still fine');
      client.send({ event: 'pusher:unsubscribe', data: { channel: 'c1' } });
      client.messages.length = 0;
      assert.equal((await subscribeRaw(client, 'c4')).event, 'pusher_internal:subscription_succeeded', 'a freed place is usable');

      const native = await connectNative(server, '/ws?ack=1');
      open.push(native);
      for (const ch of ['n1', 'n2', 'n3']) await subscribeNative(native, ch);
      native.send({ action: 'subscribe', channel: 'n4' });
      assert.deepEqual(await native.error('TOO_MANY_CHANNELS', 'n4'), {
        type: 'error',
        code: 'TOO_MANY_CHANNELS',
        message: 'A connection may subscribe to at most 3 channels',
        channel: 'n4',
      });
    });
  });

  describe('rates on a connection: clientEventsPerSecond (4301) and native clientMessagesPerSecond (RATE_LIMITED)', () => {
    const RATES = { ...APP, enableClientMessages: true, clientEventsPerSecond: 2, clientMessagesPerSecond: 3 };
    let server: Switchboard;
    const open: Array<RawClient | NativeClient> = [];
    before(async () => {
      server = await startServer({ apps: [RATES] });
    });
    after(async () => {
      for (const c of open) c.close();
      await server.close();
    });

    it('delivers two client events and refuses the third of a burst with 4301; the connection stays', async () => {
      const sender = await rawClient(server);
      const receiver = await rawClient(server);
      open.push(sender, receiver);
      await subscribeSigned(sender, 'private-rate');
      await subscribeSigned(receiver, 'private-rate');
      for (let i = 1; i <= 3; i++) sender.send({ event: 'client-n', channel: 'private-rate', data: { i } });
      const error = await sender.event('pusher:error');
      assert.deepEqual(decoded(error), { code: 4301, message: 'Client event rejected: more than 2 per second' });
      await flush(receiver, serverSdk(server), 'private-rate', 'marker');
      assert.deepEqual(
        receiver.messages.filter((m) => m.event === 'client-n').map((m) => decoded(m)),
        [{ i: 1 }, { i: 2 }],
      );
      sender.send({ event: 'pusher:ping', data: {} });
      await sender.event('pusher:pong');
      assert.equal(sender.closeCode, undefined);
    });

    it('answers three native messages, drops the fourth of a burst with RATE_LIMITED and counts it; the connection stays', async () => {
      const native = await connectNative(server, '/ws?ack=1');
      open.push(native);
      for (let i = 0; i < 3; i++) native.send({ action: 'ping' });
      native.send({ action: 'subscribe', channel: 'dropped' });
      assert.deepEqual(await native.error('RATE_LIMITED'), { type: 'error', code: 'RATE_LIMITED', message: 'More than 3 messages per second; this one was dropped' });
      await native.until(() => native.json.filter((m) => m.type === 'pong').length === 3);
      assert.equal(server.hub.channelInfo(APP.id, 'dropped').occupied, false, 'the dropped subscribe was not acted on');
      assert.equal((await stats(server)).counters.client_messages_rate_limited, 1);
      // Tokens come back at 3 per second.
      await new Promise((resolve) => setTimeout(resolve, 400));
      await subscribeNative(native, 'later');
      assert.equal(native.closeCode, undefined);
    });
  });

  describe('idleTimeoutSeconds: 4202 for connections that never subscribe', () => {
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apps: [{ ...APP, idleTimeoutSeconds: 1 }] });
    });
    after(() => server.close());

    it('closes idle Pusher (pusher:error + 4202) and native (4202) connections after the timeout, counts them, and keeps subscribed ones', async (t) => {
      // The subscribed ones first, each subscribing at once (the native one from its URL).
      const busy = await rawClient(server);
      await subscribeRaw(busy, 'room');
      const busyNative = await connectNative(server, '/ws?channel=room&ack=1');
      await busyNative.ack('subscribed', 'room');
      t.after(() => {
        busy.close();
        busyNative.close();
      });
      const started = Date.now();
      const idle = await rawClient(server);
      const idleNative = await connectNative(server, '/ws');

      assert.equal(await idle.closed, 4202);
      assert.equal(idle.closeReason, 'Closed after inactivity: no subscription');
      assert.deepEqual(decoded(idle.messages.find((m) => m.event === 'pusher:error') ?? { event: '' }), {
        code: 4202,
        message: 'Closed after inactivity: no subscription',
      });
      assert.equal(await idleNative.closed, 4202);
      assert.equal(idleNative.closeReason, 'Closed after inactivity: no subscription');
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 950 && elapsed < 3000, `closed after ${elapsed} ms`);

      // Past the timeout, the subscribed ones are still served.
      await flush(busy, serverSdk(server), 'room', 'still-here');
      await busyNative.sync();
      assert.equal(busy.closeCode, undefined);
      assert.equal(busyNative.closeCode, undefined);
      assert.equal((await stats(server)).counters.idle_connections_closed, 2);
    });

    it('does not count a connection refused for the app quota as idle later (its timer stops with it)', async (t) => {
      const quota = await startServer({ apps: [{ ...APP, idleTimeoutSeconds: 1, maxConnections: 1 }] });
      t.after(() => quota.close());
      const only = await rawClient(quota);
      await subscribeRaw(only, 'room');
      t.after(() => only.close());
      assert.equal((await refusedPusher(quota, APP.key)).code, 4004);
      await new Promise((resolve) => setTimeout(resolve, 1500)); // past the idle timeout
      const s = await stats(quota);
      assert.equal(s.counters.connections_refused_quota, 1);
      assert.equal(s.counters.idle_connections_closed, 0);
    });
  });

  describe('maxMessageBytes: close 1009', () => {
    const LIMIT = 1024;
    let server: Switchboard;
    before(async () => {
      server = await startServer({ maxMessageBytes: LIMIT });
    });
    after(() => server.close());

    /** `base` with its first "" padded so that the whole is exactly `size` bytes. */
    const padded = (base: string, size: number): string => base.replace('""', `"${'x'.repeat(size - base.length)}"`);
    const ping = (size: number): string => padded('{"event":"pusher:ping","data":""}', size);

    it('takes a Pusher message of exactly maxMessageBytes and closes with 1009 on one byte more', async () => {
      const c = await rawClient(server);
      c.send(ping(LIMIT));
      await c.event('pusher:pong');
      c.send(ping(LIMIT + 1));
      assert.equal(await c.closed, 1009);
    });

    it('does the same on a native connection', async () => {
      const c = await connectNative(server, '/ws');
      c.send(padded('{"action":"ping","pad":""}', LIMIT));
      await c.message((m) => m.type === 'pong');
      c.send(padded('{"action":"ping","pad":""}', LIMIT + 1));
      assert.equal(await c.closed, 1009);
    });
  });

  describe('maxRequestBodyBytes: 413, and the connection is closed', () => {
    const LIMIT = 2048;
    const TOKEN = 'body-limit-token-0123456789';
    let server: Switchboard;
    before(async () => {
      server = await startServer({ maxRequestBodyBytes: LIMIT, apps: [{ ...APP, apiToken: TOKEN }] });
    });
    after(() => server.close());

    /** An event body padded with spaces to exactly `size` bytes. */
    const body = (size: number): string => {
      const json = JSON.stringify({ name: 'e', channel: 'c', data: '{}' });
      return json + ' '.repeat(size - json.length);
    };

    it('accepts a body of exactly the limit and refuses one byte more with 413', async () => {
      assert.equal((await signedRequest(server, { path: '/events', body: body(LIMIT) })).status, 200);
      const refused = await signedRequest(server, { path: '/events', body: body(LIMIT + 1) });
      assert.equal(refused.status, 413);
      assert.deepEqual(refused.json, { error: `Request body is larger than ${LIMIT} bytes` });
      assert.equal(refused.headers.connection, 'close');
      const native = await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'c', data: 'x'.repeat(LIMIT) } });
      assert.deepEqual(native, { status: 413, json: { success: false, error: `Request body is larger than ${LIMIT} bytes`, errorCode: 'BODY_TOO_LARGE' } });
    });

    it('answers 413 at once and closes the connection when a body announced (or streamed) too large never finishes arriving', async () => {
      const path = signedPath({ path: '/events', body: '{}' });
      // rawHttp fails when the server keeps the connection open (here 4 s; the request timeout is 30 s).
      const declared = await rawHttp(server.port, [`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n{"name":`], {
        timeoutMs: 4000,
      });
      assert.equal(declared.status, 413);
      const chunked = await rawHttp(
        server.port,
        [`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`, `1000\r\n${'a'.repeat(4096)}\r\n`],
        { timeoutMs: 4000 },
      );
      assert.equal(chunked.status, 413);
      assert.equal((await send(server, 'GET', '/up')).status, 200);
    });
  });

  describe('handshakeTimeoutMs: slowloris upgrades are dropped; header floods get 431', () => {
    const TIMEOUT = 500;
    let server: Switchboard;
    let established: RawClient;
    let establishedAt = 0;
    before(async () => {
      server = await startServer({ handshakeTimeoutMs: TIMEOUT });
      established = await rawClient(server);
      establishedAt = Date.now();
      await subscribeRaw(established, 'room');
    });
    after(async () => {
      established.close();
      await server.close();
    });

    const partialUpgrade = `GET ${PUSHER_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`;

    it('drops a half-sent upgrade with 408 within about handshakeTimeoutMs + 1 s (the check runs every 500 ms)', async () => {
      const started = Date.now();
      const r = await rawHttp(server.port, [partialUpgrade]);
      const elapsed = r.endedAt - started;
      assert.equal(r.status, 408);
      assert.ok(elapsed >= TIMEOUT - 50 && elapsed < TIMEOUT + 1500, `dropped after ${elapsed} ms`);
    });

    it('drops an upgrade whose headers trickle in (a header every 100 ms) just the same', async () => {
      const started = Date.now();
      const parts = [partialUpgrade, ...Array.from({ length: 30 }, (_, i) => `X-Drip-${i}: 1\r\n`)];
      const r = await rawHttp(server.port, parts, { gapMs: 100 });
      const elapsed = r.endedAt - started;
      assert.equal(r.status, 408);
      assert.ok(elapsed < TIMEOUT + 1500, `dropped after ${elapsed} ms`);
    });

    it('cuts the socket of a client that never closes its side after the 408', async () => {
      const socket = connect({ host: '127.0.0.1', port: server.port, allowHalfOpen: true });
      socket.on('error', () => undefined);
      const started = Date.now();
      socket.write(partialUpgrade);
      // Keeps writing header bytes after the server's FIN, as a slowloris would.
      const drip = setInterval(() => socket.write('X-More: 1\r\n'), 100);
      await within(new Promise((resolve) => socket.once('close', resolve)), 4000, 'the server to cut the socket');
      clearInterval(drip);
      const elapsed = Date.now() - started;
      assert.ok(elapsed < TIMEOUT + 1000 + 1500, `closed after ${elapsed} ms`);
    });

    it('answers a header flood with 431 and keeps serving', async () => {
      const r = await rawHttp(server.port, [`GET ${PUSHER_PATH} HTTP/1.1\r\nHost: x\r\nX-Flood: ${'a'.repeat(20_000)}\r\n\r\n`]);
      assert.equal(r.status, 431);
      const many = await rawHttp(server.port, [`GET /up HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: y`).join('\r\n')}\r\n\r\n`]);
      assert.equal(many.status, 431);
      assert.equal((await send(server, 'GET', '/up')).status, 200);
    });

    it('leaves established WebSocket connections alone however long they live (here past 3 × the handshake timeout)', async () => {
      const left = establishedAt + 3 * TIMEOUT + 100 - Date.now();
      if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
      await flush(established, serverSdk(server), 'room', 'alive');
      assert.equal(established.closeCode, undefined);
      // A complete upgrade sent in one go is served as usual.
      const fresh = await rawClient(server);
      assert.match(await fresh.socketId(), /^\d+\.\d+$/);
      fresh.close();
    });
  });

  describe('maxChannelNameLength and maxEventNameLength', () => {
    let server: Switchboard;
    before(async () => {
      server = await startServer({ apps: [{ ...APP, maxChannelNameLength: 20, maxEventNameLength: 10 }] });
    });
    after(() => server.close());

    it('subscribes to a channel name of the maximum length and refuses one character more with 4300', async (t) => {
      const c = await rawClient(server);
      t.after(() => c.close());
      assert.equal((await subscribeRaw(c, 'a'.repeat(20))).event, 'pusher_internal:subscription_succeeded');
      c.send({ event: 'pusher:subscribe', data: { channel: 'a'.repeat(21) } });
      const error = await c.event('pusher:error');
      assert.deepEqual(decoded(error), { code: 4300, message: 'pusher:subscribe needs data.channel: a valid channel name' });
    });

    it('triggers an event name of the maximum length and refuses one character more with 400', async () => {
      assert.equal((await signedRequest(server, { path: '/events', body: { name: 'e'.repeat(10), channel: 'c', data: '{}' } })).status, 200);
      const refused = await signedRequest(server, { path: '/events', body: { name: 'e'.repeat(11), channel: 'c', data: '{}' } });
      assert.deepEqual({ status: refused.status, json: refused.json }, { status: 400, json: { error: 'name is longer than 10 characters' } });
    });
  });
});
