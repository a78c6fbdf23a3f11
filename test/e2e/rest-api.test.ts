import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, RawClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';
import { send, signedRequest, type Reply, type SignedRequest } from '../helpers/signed-request.js';

const DISABLED = { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret' } as const;
const MAX_BODY = 64 * 1024;

/** Records the events a pusher-js client gets on one channel, in order. */
class EventLog {
  readonly events: Array<{ event: string; data: unknown }> = [];
  private waiters: Array<() => void> = [];

  constructor(client: PusherJs, channel: string) {
    client.channel(channel).bind_global((event: string, data: unknown) => {
      if (event.startsWith('pusher:') || event.startsWith('pusher_internal:')) return;
      this.events.push({ event, data });
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits until an event named `name` has arrived; returns every event so far. */
  async until(name: string, timeoutMs = 3000): Promise<Array<{ event: string; data: unknown }>> {
    const deadline = Date.now() + timeoutMs;
    while (!this.events.some((e) => e.event === name)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${name} within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events;
  }
}

function assertError(reply: Reply, status: number, message?: RegExp): void {
  assert.equal(reply.status, status, reply.text);
  assert.match(String(reply.headers['content-type']), /^application\/json/);
  const body = reply.json as { error?: unknown } | undefined;
  assert.equal(typeof body?.error, 'string', `error body: ${reply.text}`);
  assert.deepEqual(Object.keys(body as object), ['error']);
  if (message) assert.match(body?.error as string, message);
}

/** A RequestError of the pusher SDK: status and raw body. */
function sdkError(err: unknown): { status: number; body: unknown } {
  const e = err as { status?: number; body?: string };
  assert.equal(typeof e.status, 'number', `not an HTTP error: ${String(err)}`);
  return { status: e.status as number, body: JSON.parse(e.body ?? 'null') };
}

describe('Pusher REST API', () => {
  let server: Switchboard;
  let sdk: Pusher;
  let unique = 0;
  /** A channel name not used by any other test. */
  const fresh = (prefix = ''): string => `${prefix}t${++unique}-${process.pid}`;

  before(async () => {
    server = await startServer({
      maxRequestBodyBytes: MAX_BODY,
      apps: [
        { ...APP, enableClientMessages: true },
        { ...DISABLED, enabled: false },
      ],
    });
    sdk = serverSdk(server);
  });
  after(() => server.close());

  async function client(t: TestContext, presenceUser?: string): Promise<PusherJs> {
    const c = pusherClient(server, presenceUser ? { presence: { user_id: presenceUser, user_info: { name: presenceUser } } } : {});
    t.after(() => c.disconnect());
    await connected(c);
    return c;
  }

  async function listening(t: TestContext, channel: string, presenceUser?: string): Promise<{ client: PusherJs; log: EventLog }> {
    const c = await client(t, presenceUser);
    await subscribed(c, channel);
    return { client: c, log: new EventLog(c, channel) };
  }

  describe('POST /events', () => {
    it('delivers to a single channel through the SDK and answers {}', async (t) => {
      const channel = fresh();
      const { log } = await listening(t, channel);
      const res = await sdk.trigger(channel, 'created', { id: 1 });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      assert.deepEqual(await log.until('created'), [{ event: 'created', data: { id: 1 } }]);
    });

    it('delivers to several channels in one call', async (t) => {
      const channels = [fresh(), fresh(), fresh()];
      const logs = await Promise.all(channels.map(async (ch) => (await listening(t, ch)).log));
      await sdk.trigger(channels, 'fanout', { n: 3 });
      for (const log of logs) assert.deepEqual(await log.until('fanout'), [{ event: 'fanout', data: { n: 3 } }]);
    });

    it('accepts a raw signed request with `channel` and string data, delivered as the same string', async (t) => {
      const channel = fresh();
      const { log } = await listening(t, channel);
      const reply = await signedRequest(server, { path: '/events', body: { name: 'raw', channel, data: 'plain text' } });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, {});
      assert.deepEqual(await log.until('raw'), [{ event: 'raw', data: 'plain text' }]);
    });

    it('leaves out the socket named by socket_id and reaches the others', async (t) => {
      const channel = fresh();
      const sender = await listening(t, channel);
      const other = await listening(t, channel);
      await sdk.trigger(channel, 'echo', { from: 'sender' }, { socket_id: sender.client.connection.socket_id });
      await sdk.trigger(channel, 'marker', {});
      // Events arrive in order: when the marker is in, the excluded event would have been too.
      assert.deepEqual(await sender.log.until('marker'), [{ event: 'marker', data: {} }]);
      assert.deepEqual(await other.log.until('marker'), [
        { event: 'echo', data: { from: 'sender' } },
        { event: 'marker', data: {} },
      ]);
    });

    it('answers info=user_count,subscription_count per channel', async (t) => {
      const pub = fresh();
      const presence = fresh('presence-');
      const empty = fresh();
      await listening(t, pub);
      await listening(t, pub);
      await listening(t, presence, 'alice');
      await listening(t, presence, 'alice');
      await listening(t, presence, 'bob');
      const res = await sdk.trigger([pub, presence, empty], 'counted', {}, { info: 'user_count,subscription_count' });
      assert.deepEqual(await res.json(), {
        channels: {
          [pub]: { subscription_count: 2 },
          [presence]: { user_count: 2, subscription_count: 3 },
          [empty]: { subscription_count: 0 },
        },
      });
    });
  });

  describe('POST /batch_events', () => {
    it('delivers every event of a batch of 10, in order', async (t) => {
      const a = fresh();
      const b = fresh();
      const logA = (await listening(t, a)).log;
      const logB = (await listening(t, b)).log;
      const batch = Array.from({ length: 10 }, (_, i) => ({ channel: i % 2 ? b : a, name: `e${i}`, data: JSON.stringify({ i }) }));
      const res = await sdk.triggerBatch(batch);
      assert.deepEqual(await res.json(), {});
      assert.deepEqual(
        (await logA.until('e8')).map((e) => e.event),
        ['e0', 'e2', 'e4', 'e6', 'e8'],
      );
      assert.deepEqual(
        (await logB.until('e9')).map((e) => e.event),
        ['e1', 'e3', 'e5', 'e7', 'e9'],
      );
      assert.deepEqual(logB.events[0], { event: 'e1', data: { i: 1 } });
    });

    it('answers info per event of the batch', async (t) => {
      const presence = fresh('presence-');
      const pub = fresh();
      await listening(t, presence, 'carol');
      await listening(t, pub);
      const reply = await signedRequest(server, {
        path: '/batch_events',
        body: {
          batch: [
            { channel: presence, name: 'a', data: '1', info: 'user_count,subscription_count' },
            { channel: pub, name: 'b', data: '2', info: 'subscription_count' },
            { channel: pub, name: 'c', data: '3' },
          ],
        },
      });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.json, { batch: [{ user_count: 1, subscription_count: 1 }, { subscription_count: 1 }, {}] });
    });

    it('refuses 11 events with 400 and delivers none of them', async (t) => {
      const channel = fresh();
      const { log } = await listening(t, channel);
      const batch = Array.from({ length: 11 }, (_, i) => ({ channel, name: `e${i}`, data: '{}' }));
      const err = await sdk.triggerBatch(batch).then(
        () => assert.fail('expected a 400'),
        (e: unknown) => sdkError(e),
      );
      assert.equal(err.status, 400);
      assert.match((err.body as { error: string }).error, /at most 10/);
      await sdk.trigger(channel, 'marker', {});
      assert.deepEqual((await log.until('marker')).map((e) => e.event), ['marker']);
    });

    it('refuses a batch with one bad event with 400 and delivers nothing from it', async (t) => {
      const channel = fresh();
      const { log } = await listening(t, channel);
      const reply = await signedRequest(server, {
        path: '/batch_events',
        body: {
          batch: [
            { channel, name: 'good-1', data: '1' },
            { channel, name: 'good-2', data: '2' },
            { channel: 'bad channel!', name: 'bad', data: '3' },
          ],
        },
      });
      assertError(reply, 400, /^batch\[2\]: invalid channel name/);
      await sdk.trigger(channel, 'marker', {});
      assert.deepEqual((await log.until('marker')).map((e) => e.event), ['marker']);
    });

    it('refuses an oversized event inside a batch with 413 and delivers nothing', async (t) => {
      const channel = fresh();
      const { log } = await listening(t, channel);
      const reply = await signedRequest(server, {
        path: '/batch_events',
        body: { batch: [{ channel, name: 'good', data: '1' }, { channel, name: 'big', data: 'x'.repeat(10 * 1024 + 1) }] },
      });
      assertError(reply, 413, /^batch\[1\]: /);
      await sdk.trigger(channel, 'marker', {});
      assert.deepEqual((await log.until('marker')).map((e) => e.event), ['marker']);
    });

    it('refuses an empty batch and a batch that is not an array', async () => {
      assertError(await signedRequest(server, { path: '/batch_events', body: { batch: [] } }), 400, /batch/);
      assertError(await signedRequest(server, { path: '/batch_events', body: { batch: { name: 'x' } } }), 400, /batch/);
    });
  });

  describe('GET /channels', () => {
    it('lists occupied channels, filtered by prefix', async (t) => {
      const prefix = `${fresh()}-`;
      const a = `${prefix}a`;
      const b = `${prefix}b`;
      await listening(t, a);
      await listening(t, b);
      await listening(t, fresh()); // outside the prefix
      const reply = await signedRequest(server, { path: '/channels', query: { filter_by_prefix: prefix } });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, { channels: { [a]: {}, [b]: {} } });
    });

    it('gives user_count with filter_by_prefix=presence- (through the SDK)', async (t) => {
      const prefix = `presence-${fresh()}-`;
      await listening(t, `${prefix}one`, 'u1');
      await listening(t, `${prefix}one`, 'u1');
      await listening(t, `${prefix}one`, 'u2');
      await listening(t, `${prefix}two`, 'u3');
      const res = await sdk.get({ path: '/channels', params: { filter_by_prefix: prefix, info: 'user_count' } });
      assert.deepEqual(await res.json(), { channels: { [`${prefix}one`]: { user_count: 2 }, [`${prefix}two`]: { user_count: 1 } } });
    });

    it('refuses info=user_count without the presence- prefix with 400', async () => {
      assertError(await signedRequest(server, { path: '/channels', query: { info: 'user_count' } }), 400, /presence-/);
      assertError(await signedRequest(server, { path: '/channels', query: { info: 'user_count', filter_by_prefix: 'private-' } }), 400, /presence-/);
    });

    it('answers an empty object when nothing matches', async () => {
      const reply = await signedRequest(server, { path: '/channels', query: { filter_by_prefix: fresh() } });
      assert.deepEqual(reply.json, { channels: {} });
    });
  });

  describe('GET /channels/{name}', () => {
    it('says occupied false for a channel nobody is in', async () => {
      const reply = await signedRequest(server, { path: `/channels/${fresh()}` });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, { occupied: false });
    });

    it('says occupied true with subscription_count when asked', async (t) => {
      const channel = fresh();
      await listening(t, channel);
      await listening(t, channel);
      assert.deepEqual((await signedRequest(server, { path: `/channels/${channel}` })).json, { occupied: true });
      const res = await sdk.get({ path: `/channels/${channel}`, params: { info: 'subscription_count' } });
      assert.deepEqual(await res.json(), { occupied: true, subscription_count: 2 });
    });

    it('gives distinct users as user_count on a presence channel', async (t) => {
      const channel = fresh('presence-');
      await listening(t, channel, 'dave');
      await listening(t, channel, 'dave');
      await listening(t, channel, 'erin');
      const reply = await signedRequest(server, { path: `/channels/${channel}`, query: { info: 'user_count,subscription_count' } });
      assert.deepEqual(reply.json, { occupied: true, user_count: 2, subscription_count: 3 });
    });

    it('gives user_count 0 for an empty presence channel', async () => {
      const reply = await signedRequest(server, { path: `/channels/${fresh('presence-')}`, query: { info: 'user_count' } });
      assert.deepEqual(reply.json, { occupied: false, user_count: 0 });
    });

    it('refuses user_count on a non-presence channel with 400', async () => {
      assertError(await signedRequest(server, { path: `/channels/${fresh('private-')}`, query: { info: 'user_count' } }), 400, /presence/);
    });

    it('refuses an invalid channel name with 400', async () => {
      assertError(await signedRequest(server, { path: `/channels/${'a'.repeat(201)}` }), 400, /channel name/);
      assertError(await signedRequest(server, { path: '/channels/bad%20name' }), 400, /channel name/);
    });
  });

  describe('GET /channels/{name}/users', () => {
    it('lists the distinct users of a presence channel', async (t) => {
      const channel = fresh('presence-');
      await listening(t, channel, 'frank');
      await listening(t, channel, 'frank');
      await listening(t, channel, 'grace');
      const res = await sdk.get({ path: `/channels/${channel}/users` });
      const body = (await res.json()) as { users: Array<{ id: string }> };
      assert.deepEqual(
        body.users.sort((x, y) => x.id.localeCompare(y.id)),
        [{ id: 'frank' }, { id: 'grace' }],
      );
    });

    it('answers an empty list for an empty presence channel', async () => {
      assert.deepEqual((await signedRequest(server, { path: `/channels/${fresh('presence-')}/users` })).json, { users: [] });
    });

    it('refuses a non-presence channel with 400', async (t) => {
      const channel = fresh('private-');
      await listening(t, channel);
      assertError(await signedRequest(server, { path: `/channels/${channel}/users` }), 400, /presence/);
      assertError(await signedRequest(server, { path: `/channels/${fresh()}/users` }), 400, /presence/);
    });
  });

  describe('POST /users/{id}/terminate_connections', () => {
    async function signedIn(userId: string): Promise<RawClient> {
      const raw = await RawClient.connect(server);
      const socketId = await raw.socketId();
      raw.send({ event: 'pusher:signin', data: sdk.authenticateUser(socketId, { id: userId }) });
      await raw.event('pusher:signin_success');
      return raw;
    }

    it("closes every connection of that user with 4009 and leaves other users' connections open", async (t) => {
      const user = fresh('user-');
      const tab1 = await signedIn(user);
      const tab2 = await signedIn(user);
      const bystander = await signedIn(fresh('user-'));
      t.after(() => bystander.close());
      const res = await sdk.terminateUserConnections(user);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {});
      assert.equal(await tab1.closed, 4009);
      assert.equal(await tab2.closed, 4009);
      bystander.send({ event: 'pusher:ping', data: {} });
      await bystander.event('pusher:pong');
      assert.equal(bystander.closeCode, undefined);
    });

    it('answers {} for a user with no connections', async () => {
      const reply = await signedRequest(server, { method: 'POST', path: `/users/${fresh('nobody-')}/terminate_connections` });
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, {});
    });
  });

  describe('refusals', () => {
    const trigger = (body: unknown, extra: Partial<SignedRequest> = {}): Promise<Reply> => signedRequest(server, { path: '/events', body, ...extra });
    const event = { name: 'e', channel: 'refusals', data: '{}' };

    // After every refusal the server must still serve a normal, signed trigger.
    afterEach(async () => {
      const reply = await trigger(event);
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(reply.json, {});
    });

    it('a bad signature → 401', async () => {
      const reply = await trigger(event, { tamper: (q) => q.set('auth_signature', (q.get('auth_signature') as string).replace(/^./, (c) => (c === '0' ? '1' : '0'))) });
      assertError(reply, 401, /^Invalid signature$/);
    });

    it('a signature made with another secret → 401', async () => {
      assertError(await trigger(event, { app: { ...APP, secret: 'not-the-secret' } }), 401, /^Invalid signature$/);
    });

    it('a wrong auth_key → 401', async () => {
      assertError(await trigger(event, { app: { ...APP, key: 'wrong-key' } }), 401, /auth_key/);
    });

    it('missing auth parameters → 401', async () => {
      assertError(await trigger(event, { tamper: (q) => q.delete('auth_timestamp') }), 401);
      assertError(await send(server, 'POST', `/apps/${APP.id}/events`, Buffer.from(JSON.stringify(event))), 401);
    });

    it('a timestamp 601 s old (a replayed request) → 401', async () => {
      assertError(await trigger(event, { timestamp: Math.floor(Date.now() / 1000) - 601 }), 401, /auth_timestamp/);
    });

    it('a timestamp moved after signing (forged) → 401', async () => {
      const reply = await trigger(event, { tamper: (q) => q.set('auth_timestamp', String(Number(q.get('auth_timestamp')) + 1)) });
      assertError(reply, 401, /^Invalid signature$/);
    });

    it('a body that does not match body_md5 → 401', async () => {
      assertError(await trigger(event, { md5Of: JSON.stringify({ ...event, name: 'other' }) }), 401, /body_md5/);
    });

    it('an unknown app id → 404', async () => {
      assertError(await trigger(event, { app: { ...APP, id: 'no-such-app' } }), 404, /app/i);
    });

    it('a disabled app → 403', async () => {
      assertError(await trigger(event, { app: DISABLED }), 403, /disabled/i);
    });

    it('data over 10 KB → 413 (exactly 10 KB passes)', async () => {
      assertError(await trigger({ ...event, data: 'x'.repeat(10 * 1024 + 1) }), 413, /data/);
      assert.equal((await trigger({ ...event, data: 'x'.repeat(10 * 1024) })).status, 200);
    });

    it('a body over maxRequestBodyBytes → 413, declared or chunked', async () => {
      const big = { ...event, padding: 'p'.repeat(MAX_BODY) };
      assertError(await trigger(big), 413, new RegExp(`larger than ${MAX_BODY} bytes`));
      assertError(await trigger(big, { headers: { 'transfer-encoding': 'chunked' } }), 413, new RegExp(`larger than ${MAX_BODY} bytes`));
    });

    it('malformed JSON → 400', async () => {
      assertError(await trigger('{"name": "e", "channel": '), 400, /JSON/);
      assertError(await trigger('[1,2]'), 400, /JSON object/);
    });

    it('name missing, empty or longer than 200 → 400 (200 passes)', async () => {
      assertError(await trigger({ channel: 'c', data: '{}' }), 400, /name/);
      assertError(await trigger({ ...event, name: '' }), 400, /name/);
      assertError(await trigger({ ...event, name: 'n'.repeat(201) }), 400, /name/);
      assert.equal((await trigger({ ...event, name: 'n'.repeat(200) })).status, 200);
    });

    it('data or channels missing → 400', async () => {
      assertError(await trigger({ name: 'e', channel: 'c' }), 400, /data/);
      assertError(await trigger({ name: 'e', data: '{}' }), 400, /channel/);
      assertError(await trigger({ name: 'e', data: '{}', channels: [] }), 400, /channels/);
    });

    it('an invalid channel name → 400 (bad characters, over 200 characters, not a string)', async () => {
      for (const channel of ['has space', 'slash/', 'colon:x', 'c'.repeat(201), 42]) {
        assertError(await trigger({ ...event, channel }), 400, /invalid channel name/);
      }
      assertError(await trigger({ ...event, channel: undefined, channels: ['ok', 'not ok'] }), 400, /invalid channel name/);
      assert.equal((await trigger({ ...event, channel: 'c'.repeat(200) })).status, 200);
    });

    it('more than 100 channels → 400 (100 pass)', async () => {
      const channels = Array.from({ length: 101 }, (_, i) => `many-${i}`);
      assertError(await trigger({ name: 'e', data: '{}', channels }), 400, /at most 100 channels/);
      assert.equal((await trigger({ name: 'e', data: '{}', channels: channels.slice(0, 100) })).status, 200);
    });

    it('a bad socket_id → 400', async () => {
      for (const socketId of ['123', 'abc.def', '1.2.3', '.1', 12.5]) {
        assertError(await trigger({ ...event, socket_id: socketId }), 400, /socket_id/);
      }
    });

    it('an unknown route under /apps/{id} → 404', async () => {
      assertError(await signedRequest(server, { path: '/nowhere' }), 404);
    });
  });

  describe('HTTP', () => {
    it('keeps the connection alive: several requests on one agent share one socket', async (t) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      t.after(() => agent.destroy());
      const replies: Reply[] = [];
      for (let i = 0; i < 4; i++) {
        // A refused request in the middle must not cost the connection either.
        const body = i === 2 ? '{not json' : { name: 'ka', channel: 'keep-alive', data: String(i) };
        replies.push(await signedRequest(server, { path: '/events', body, agent }));
      }
      assert.deepEqual(
        replies.map((r) => r.status),
        [200, 200, 400, 200],
      );
      assert.deepEqual(
        replies.map((r) => r.reusedSocket),
        [false, true, true, true],
      );
      assert.equal(new Set(replies.map((r) => r.localPort)).size, 1);
      for (const r of replies) assert.equal(r.headers.connection, 'keep-alive');
    });

    it('GET /up → 200 {ok:true}', async () => {
      const reply = await send(server, 'GET', '/up');
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.json, { ok: true });
    });

    it('GET /up/{app id} → 200 for a known app, 404 for an unknown one', async () => {
      const ok = await send(server, 'GET', `/up/${APP.id}`);
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.json, { ok: true });
      assertError(await send(server, 'GET', '/up/nope'), 404);
    });

    it('an unknown path → 404 JSON', async () => {
      assertError(await send(server, 'GET', '/nothing/here'), 404);
    });
  });
});
