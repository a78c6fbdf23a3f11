import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, MetadataError, type HookConnection, type InboundMessage, type InboundVerdict, type Switchboard, type SwitchboardHooks } from '../../src/index.js';
import { connected, pusherClient, within, RawClient, subscribed, type PusherJs } from '../helpers/clients.js';
import { api, closeAll, connectNative, makeJwt, nowSeconds, subscribeNative, type NativeClient } from '../helpers/native.js';
import { PROTOCOL_QUERY } from '../helpers/raw-pusher.js';
import { APP } from '../helpers/server.js';
import { errorOf, pusherSignedIn, rawSubscribed } from '../helpers/users.js';
import { until } from '../helpers/wait.js';

const JWT_SECRET = 'hooks-jwt-secret-0987654';
const TOKEN = 'hooks-api-token-0123456';
const HOOK_TIMEOUT_MS = 150;
const MAX_METADATA = 64;

/** What the hooks saw, per connection id. */
interface Seen {
  opened?: { address: string; header: string | undefined; url: string; user: unknown; protocol: string };
  closed?: { code: number; reason: string; metadata: unknown };
  subscribed: Array<{ channel: string; metadata: unknown }>;
  unsubscribed: string[];
  signedIn: unknown[];
}

const never = new Promise<never>(() => undefined);

/** The three ways a hook goes wrong (`throw`, `async-reject`, `slow`), the same for every hook. */
function misbehave(how: 'throw' | 'async-reject' | 'slow', what: string): Promise<never> {
  if (how === 'throw') throw new Error(`${what} exploded`);
  return how === 'slow' ? never : Promise.reject(new Error(`${what} down`));
}

/**
 * The hooks under test. What each does is chosen by the client: the connection URL's `?hook=`
 * for connectionOpened, the message's `data.do` for clientEvent and publish, the channel name
 * for subscribed. That way one server serves every case, in parallel and without shared state.
 */
function testHooks(seen: Map<string, Seen>): SwitchboardHooks {
  const of = (c: HookConnection): Seen => {
    let s = seen.get(c.id);
    if (!s) seen.set(c.id, (s = { subscribed: [], unsubscribed: [], signedIn: [] }));
    return s;
  };
  const moderate = (m: InboundMessage): InboundVerdict | Promise<InboundVerdict> => {
    const action = typeof m.data === 'object' && m.data !== null ? (m.data as { do?: string }).do : m.data;
    switch (action) {
      case 'censor':
        return { data: { text: '***', by: m.connection.metadata } };
      case 'censor-text':
        return { data: 'censored' };
      case 'reject':
        return { reject: 'No shouting here' };
      case 'drop':
        return { drop: true };
      case 'throw':
      case 'async-reject':
      case 'slow':
        return misbehave(action, 'moderation service');
      case 'rename':
        // The name is the client's choice here, so the tests can hand the hook invalid ones too.
        return { event: (m.data as { to: string }).to };
      case 'rename-censor':
        return { event: (m.data as { to: string }).to, data: { text: '***' } };
      case 'late':
        // Answers after a while, but within the timeout: what comes after it must wait.
        return new Promise((resolve) => setTimeout(() => resolve({ data: { text: 'late', by: m.connection.metadata } }), 50));
      default:
        return undefined;
    }
  };
  return {
    connectionOpened({ connection, headers, url, user }) {
      of(connection).opened = { address: connection.address, header: headers['x-test'] as string | undefined, url, user, protocol: connection.protocol };
      const hook = new URL(url, 'http://x').searchParams.get('hook');
      switch (hook) {
        case 'reject':
          return { reject: 'Banned from this chat' };
        case 'throw':
        case 'async-reject':
        case 'slow':
          return misbehave(hook, 'session store');
        case 'too-big':
          connection.setMetadata({ blob: 'x'.repeat(MAX_METADATA) });
          return undefined;
        case 'async':
          // The client's frames (its subscribe) must wait until this answers.
          return new Promise((resolve) => setTimeout(() => {
            connection.setMetadata({ room: 'lobby', async: true });
            resolve(undefined);
          }, 50));
        default:
          connection.setMetadata({ room: 'lobby' });
          return undefined;
      }
    },
    connectionClosed({ connection, code, reason }) {
      of(connection).closed = { code, reason, metadata: connection.metadata };
    },
    subscribed({ connection, channel }) {
      of(connection).subscribed.push({ channel, metadata: connection.metadata });
      if (channel.endsWith('hook-throws')) throw new Error('subscribed hook exploded');
      if (channel.endsWith('hook-slow')) return never;
      return undefined;
    },
    unsubscribed({ connection, channel }) {
      of(connection).unsubscribed.push(channel);
    },
    signedIn({ connection, user }) {
      of(connection).signedIn.push(user);
    },
    clientEvent: moderate,
    publish: moderate,
  };
}

describe('embedding hooks (one node, pusher-js and native clients)', () => {
  let sb: Switchboard;
  const seen = new Map<string, Seen>();
  const natives: NativeClient[] = [];
  const pushers: PusherJs[] = [];
  const raws: RawClient[] = [];

  const native = async (query = ''): Promise<NativeClient> => {
    const c = await connectNative(sb, `/ws?format=envelope${query}`, { headers: { 'x-test': 'native-header' } });
    natives.push(c);
    return c;
  };
  const pusher = async (opts: Parameters<typeof pusherClient>[1] = {}): Promise<PusherJs> => {
    const client = pusherClient(sb, opts);
    pushers.push(client);
    await connected(client);
    return client;
  };
  const raw = async (query = ''): Promise<RawClient> => {
    const c = await RawClient.connect(sb, `/app/${APP.key}?${PROTOCOL_QUERY}${query}`);
    raws.push(c);
    return c;
  };
  /** The id of the native connection: the only one whose hooks saw this header value and URL. */
  const idOf = (url: string): string => {
    const found = [...seen].find(([, s]) => s.opened?.url === url);
    assert.ok(found, `no connection opened with ${url}`);
    return found[0];
  };

  before(async () => {
    sb = await createServer(
      {
        host: '127.0.0.1',
        port: 0,
        logLevel: 'silent',
        hookTimeoutMs: HOOK_TIMEOUT_MS,
        maxConnectionMetadataBytes: MAX_METADATA,
        apps: [{ ...APP, jwtSecret: JWT_SECRET, apiToken: TOKEN, enableClientMessages: true, clientPublish: true, clientEventsPerSecond: 100 }, { id: 'other-id', key: 'other-key', secret: 'other-secret' }],
      },
      { hooks: testHooks(seen) },
    );
  });
  after(async () => {
    await closeAll(natives);
    for (const p of pushers) p.disconnect();
    for (const r of raws) r.ws.close();
    await sb.close();
  });

  describe('connectionOpened', () => {
    it('tells the request address, headers, URL and the native identity; its metadata shows in every other hook, connection() and GET /info', async () => {
      const jwt = await makeJwt(JWT_SECRET, { sub: 'ann', sid: 'tab1', exp: nowSeconds() + 60 });
      const c = await native(`&jwt=${jwt}&t=open1`);
      await subscribeNative(c, 'room-open1');
      const id = idOf(`/ws?format=envelope&jwt=${jwt}&t=open1`);
      const s = seen.get(id) as Seen;
      assert.deepEqual(s.opened, { address: '127.0.0.1', header: 'native-header', url: `/ws?format=envelope&jwt=${jwt}&t=open1`, user: { id: 'ann', session: 'tab1' }, protocol: 'native' });
      assert.deepEqual(s.signedIn, [{ id: 'ann', session: 'tab1' }]);
      assert.deepEqual(s.subscribed, [{ channel: 'room-open1', metadata: { room: 'lobby' } }]);
      const summary = await sb.connection(id);
      assert.equal(summary?.user, 'ann');
      assert.deepEqual(summary?.metadata, { room: 'lobby' });
      const info = await api(sb, 'GET', `/info?id=${id}`, { token: TOKEN });
      assert.deepEqual((info.json.connections as Array<Record<string, unknown>>)[0]?.metadata, { room: 'lobby' });
    });

    it('holds pusher:connection_established and the client’s first frames until an async hook answers', async () => {
      const c = await raw('&hook=async');
      const socketId = await c.socketId();
      await rawSubscribed(c, 'early-bird');
      assert.deepEqual(seen.get(socketId)?.subscribed, [{ channel: 'early-bird', metadata: { room: 'lobby', async: true } }]);
      assert.equal(seen.get(socketId)?.opened?.protocol, 'pusher');
      // Native clients may send before the hook answers: their frames wait for it too.
      const n = await native('&ack=1&hook=async&t=early');
      n.send({ action: 'subscribe', channel: 'early-native' });
      await n.ack('subscribed', 'early-native');
      assert.deepEqual(seen.get(idOf('/ws?format=envelope&ack=1&hook=async&t=early'))?.subscribed, [{ channel: 'early-native', metadata: { room: 'lobby', async: true } }]);
    });

    it('{ reject } closes the connection with 4010 and the application’s reason (both protocols)', async () => {
      const c = await raw('&hook=reject');
      assert.equal(await within(c.closed, 'close'), 4010);
      assert.equal(c.closeReason, 'Banned from this chat');
      assert.deepEqual(errorOf(await c.event('pusher:error')), { code: 4010, message: 'Banned from this chat' });
      const n = await native('&hook=reject');
      assert.equal(await within(n.closed, 'close'), 4010);
      assert.equal(n.closeReason, 'Banned from this chat');
    });

    for (const [hook, reason] of [
      ['throw', "The application's connectionOpened hook failed"],
      ['async-reject', "The application's connectionOpened hook failed"],
      ['slow', `The application's connectionOpened hook did not answer within ${HOOK_TIMEOUT_MS} ms`],
      ['too-big', "The application's connectionOpened hook failed"],
    ] as const) {
      it(`a hook that ${hook === 'too-big' ? 'sets metadata past the bound' : hook === 'slow' ? 'times out' : hook === 'throw' ? 'throws' : 'rejects'} costs that connection only: 4101, and the server carries on`, async () => {
        const before = sb.metrics().counters.hook_failures;
        const c = await raw(`&hook=${hook}`);
        assert.equal(await within(c.closed, 'close'), 4101);
        assert.equal(c.closeReason, reason);
        const n = await native(`&hook=${hook}`);
        assert.equal(await within(n.closed, 'close'), 4101);
        assert.equal(n.closeReason, reason);
        assert.equal(sb.metrics().counters.hook_failures, before + 2);
        const fine = await pusher();
        await subscribed(fine, 'after-a-failed-open');
      });
    }
  });

  describe('connectionClosed', () => {
    it('gets the client’s close code and reason, and the metadata', async () => {
      const c = await native('&t=closer');
      const id = idOf('/ws?format=envelope&t=closer');
      c.ws.close(4321, 'see you');
      await until(() => seen.get(id)?.closed !== undefined, 'connectionClosed');
      assert.deepEqual(seen.get(id)?.closed, { code: 4321, reason: 'see you', metadata: { room: 'lobby' } });
    });

    it('gets the server’s own code when the server closed it (disconnect), on the Pusher protocol too', async () => {
      // A raw client: pusher-js, told 4009, keeps a 30 s timer that would hold the test process.
      const r = await raw();
      const id = await r.socketId();
      assert.equal(await sb.disconnect({ id }), 1);
      await until(() => seen.get(id)?.closed !== undefined, 'connectionClosed');
      assert.deepEqual(seen.get(id)?.closed, { code: 4009, reason: 'Disconnected by the server', metadata: { room: 'lobby' } });
    });

    it('pusher-js: disconnect() reaches it with the code pusher-js closes with and the metadata', async () => {
      const pj = await pusher();
      const id = pj.connection.socket_id;
      pj.disconnect();
      await until(() => seen.get(id)?.closed !== undefined, 'connectionClosed');
      assert.deepEqual(seen.get(id)?.closed, { code: 1000, reason: '', metadata: { room: 'lobby' } });
    });

    it('is not called for a connection that connectionOpened turned away', async () => {
      const c = await raw('&hook=reject&t=noclose');
      const id = idOf(`/app/${APP.key}?${PROTOCOL_QUERY}&hook=reject&t=noclose`);
      await within(c.closed, 'close');
      // A client that closes normally afterwards: once its close was reported, so was the refused one's.
      const later = await native('&t=after-noclose');
      const laterId = idOf('/ws?format=envelope&t=after-noclose');
      later.close();
      await until(() => seen.get(laterId)?.closed !== undefined, 'the later close');
      assert.equal(seen.get(id)?.closed, undefined);
    });
  });

  describe('subscribed, unsubscribed, signedIn', () => {
    it('pusher-js: subscribe, sign in and unsubscribe each reach their hook once', async () => {
      const pj = await pusher({ user: { id: 'bob', user_info: { name: 'Bob' } } });
      const id = pj.connection.socket_id;
      await subscribed(pj, 'lobby-pj');
      await subscribed(pj, 'private-lobby-pj');
      await pusherSignedIn(pj, 'bob');
      pj.unsubscribe('lobby-pj');
      await until(() => (seen.get(id)?.unsubscribed.length ?? 0) > 0, 'unsubscribed');
      const s = seen.get(id) as Seen;
      assert.deepEqual(
        s.subscribed.map((x) => x.channel),
        ['lobby-pj', 'private-lobby-pj', '#server-to-user-bob'],
      );
      assert.deepEqual(s.signedIn, [{ id: 'bob', info: { name: 'Bob' } }]);
      assert.deepEqual(s.unsubscribed, ['lobby-pj']);
    });

    it('native: subscribe and unsubscribe reach their hooks; a repeated subscribe does not', async () => {
      const c = await native('&t=subs');
      const id = idOf('/ws?format=envelope&t=subs');
      await subscribeNative(c, 'lobby-n');
      await subscribeNative(c, 'lobby-n');
      c.send({ action: 'unsubscribe', channel: 'lobby-n' });
      await c.ack('unsubscribed', 'lobby-n');
      c.send({ action: 'unsubscribe', channel: 'never-joined' });
      await c.sync();
      assert.deepEqual(seen.get(id)?.subscribed.map((x) => x.channel), ['lobby-n']);
      assert.deepEqual(seen.get(id)?.unsubscribed, ['lobby-n']);
    });

    it('a notification hook that throws or times out: the client gets 4304 / HOOK_FAILED and stays subscribed', async () => {
      const r = await raw();
      await rawSubscribed(r, 'x-hook-throws');
      assert.deepEqual(errorOf(await r.event('pusher:error')), { code: 4304, message: "The application's subscribed hook failed" });
      const c = await native();
      await subscribeNative(c, 'x-hook-slow');
      assert.equal((await c.error('HOOK_FAILED')).message, `The application's subscribed hook did not answer within ${HOOK_TIMEOUT_MS} ms`);
      sb.broadcast('x-hook-throws', 'still here');
      sb.broadcast('x-hook-slow', 'still here');
      await r.next((m) => m.channel === 'x-hook-throws' && m.data === 'still here');
      await c.message((m) => m.channel === 'x-hook-slow' && m.data === 'still here');
    });
  });

  describe('clientEvent (pusher-js) and publish (native): inspect, change, reject, swallow', () => {
    const pair = async (channel: string): Promise<{ from: PusherJs; to: PusherJs; got: unknown[] }> => {
      const from = await pusher();
      const to = await pusher();
      await subscribed(from, channel);
      await subscribed(to, channel);
      const got: unknown[] = [];
      to.channel(channel).bind('client-say', (d: unknown) => got.push(d));
      return { from, to, got };
    };
    const pusherErrors = (client: PusherJs): Array<{ code: number; message: string }> => {
      const errors: Array<{ code: number; message: string }> = [];
      client.connection.bind('error', (e: { data?: { code: number; message: string } }) => e.data && errors.push(e.data));
      return errors;
    };

    it('pusher-js: unchanged, changed (with the metadata), swallowed, in the order sent even when a hook answers late', async () => {
      const { from, got } = await pair('private-mod-1');
      const ch = from.channel('private-mod-1');
      ch.trigger('client-say', { text: 'hi' });
      ch.trigger('client-say', { do: 'late' });
      ch.trigger('client-say', { do: 'drop' });
      ch.trigger('client-say', { do: 'censor' });
      ch.trigger('client-say', { text: 'bye' });
      await until(() => got.length >= 4, 'four deliveries');
      assert.deepEqual(got, [{ text: 'hi' }, { text: 'late', by: { room: 'lobby' } }, { text: '***', by: { room: 'lobby' } }, { text: 'bye' }]);
    });

    it('pusher-js: { reject } is 4303 with the reason; throw, rejection and timeout are 4304; nothing is delivered; the connection stays', async () => {
      const { from, got } = await pair('private-mod-2');
      const errors = pusherErrors(from);
      const ch = from.channel('private-mod-2');
      for (const action of ['reject', 'throw', 'async-reject', 'slow']) ch.trigger('client-say', { do: action });
      ch.trigger('client-say', { text: 'after' });
      await until(() => got.length >= 1, 'the message after the failures');
      assert.deepEqual(got, [{ text: 'after' }]);
      assert.deepEqual(errors, [
        { code: 4303, message: 'No shouting here' },
        { code: 4304, message: "The application's clientEvent hook failed; the message was not delivered" },
        { code: 4304, message: "The application's clientEvent hook failed; the message was not delivered" },
        { code: 4304, message: `The application's clientEvent hook did not answer within ${HOOK_TIMEOUT_MS} ms; the message was not delivered` },
      ]);
      assert.equal(from.connection.state, 'connected');
    });

    it('native: unchanged, changed (JSON and text), swallowed, rejected (MESSAGE_REJECTED), failed (HOOK_FAILED); pusher-js subscribers see the same', async () => {
      const from = await native('&t=pub');
      const to = await native();
      const pj = await pusher();
      for (const c of [from, to]) await subscribeNative(c, 'chat');
      await subscribed(pj, 'chat');
      const pjGot: unknown[] = [];
      pj.channel('chat').bind('message', (d: unknown) => pjGot.push(d));
      const send = (data: unknown): void => from.send({ action: 'publish', channel: 'chat', data });
      send('plain');
      send({ do: 'censor' });
      send('censor-text');
      send({ do: 'drop' });
      send({ do: 'reject' });
      send({ do: 'throw' });
      send({ do: 'slow' });
      send({ text: 'last' });
      await to.message((m) => (m.data as { text?: string } | undefined)?.text === 'last');
      assert.deepEqual(
        to.json.filter((m) => m.event === 'message').map((m) => m.data),
        ['plain', { text: '***', by: { room: 'lobby' } }, 'censored', { text: 'last' }],
      );
      assert.equal((await from.error('MESSAGE_REJECTED', 'chat')).message, 'No shouting here');
      const failures = await from.until(() => {
        const f = from.json.filter((m) => m.code === 'HOOK_FAILED');
        return f.length === 2 && f;
      });
      assert.deepEqual(failures.map((m) => m.message), [
        "The application's publish hook failed; the message was not delivered",
        `The application's publish hook did not answer within ${HOOK_TIMEOUT_MS} ms; the message was not delivered`,
      ]);
      await until(() => pjGot.length >= 4, 'pusher-js deliveries');
      assert.deepEqual(pjGot, ['plain', { text: '***', by: { room: 'lobby' } }, 'censored', { text: 'last' }]);
    });
  });

  describe('clientEvent and publish: renaming the event', () => {
    it('pusher-js: a new client- name, alone or with new data; an invalid name is 4304 naming the rule, nothing is delivered, the connection stays', async () => {
      const from = await pusher();
      const to = await pusher();
      for (const c of [from, to]) await subscribed(c, 'private-rename');
      const got: Array<[string, unknown]> = [];
      to.channel('private-rename').bind_global((event: string, data: unknown) => !event.startsWith('pusher') && got.push([event, data]));
      const errors: Array<{ code: number; message: string }> = [];
      from.connection.bind('error', (e: { data?: { code: number; message: string } }) => e.data && errors.push(e.data));
      const before = sb.metrics().counters.hook_failures;
      const ch = from.channel('private-rename');
      ch.trigger('client-say', { do: 'rename', to: 'client-shout' });
      ch.trigger('client-say', { do: 'rename-censor', to: 'client-whisper' });
      ch.trigger('client-say', { do: 'rename', to: 'shout' });
      ch.trigger('client-say', { do: 'rename', to: `client-${'x'.repeat(200)}` });
      ch.trigger('client-say', { do: 'rename', to: 42 });
      ch.trigger('client-say', { text: 'after' });
      await until(() => got.length >= 3, 'three deliveries');
      assert.deepEqual(got, [
        ['client-shout', { do: 'rename', to: 'client-shout' }],
        ['client-whisper', { text: '***' }],
        ['client-say', { text: 'after' }],
      ]);
      const refused = (rule: string): { code: number; message: string } => ({
        code: 4304,
        message: `The application's clientEvent hook answered an invalid event name (${rule}); the message was not delivered`,
      });
      assert.deepEqual(errors, [refused('client event names start with client-'), refused('event names are at most 200 characters'), refused('the event name must be a string')]);
      assert.equal(sb.metrics().counters.hook_failures, before + 3);
      assert.equal(from.connection.state, 'connected');
    });

    it('native: any non-empty name not starting with pusher: or pusher_internal:; native and pusher-js subscribers get it; an invalid one is HOOK_FAILED naming the rule', async () => {
      const from = await native();
      const to = await native();
      const pj = await pusher();
      for (const c of [from, to]) await subscribeNative(c, 'rename-n');
      await subscribed(pj, 'rename-n');
      const pjGot: Array<[string, unknown]> = [];
      pj.channel('rename-n').bind_global((event: string, data: unknown) => !event.startsWith('pusher') && pjGot.push([event, data]));
      const send = (data: unknown): void => from.send({ action: 'publish', channel: 'rename-n', event: 'chat', data });
      send({ do: 'rename', to: 'shout' });
      send({ do: 'rename-censor', to: 'whisper' });
      send({ do: 'rename', to: 'pusher:connection_established' });
      send({ do: 'rename', to: '' });
      send({ text: 'after' });
      await to.message((m) => (m.data as { text?: string } | undefined)?.text === 'after');
      assert.deepEqual(
        to.json.filter((m) => m.channel === 'rename-n' && m.type === undefined).map((m) => [m.event, m.data]),
        [['shout', { do: 'rename', to: 'shout' }], ['whisper', { text: '***' }], ['chat', { text: 'after' }]],
      );
      const failures = await from.until(() => {
        const f = from.json.filter((m) => m.code === 'HOOK_FAILED');
        return f.length === 2 && f;
      });
      assert.deepEqual(failures.map((m) => [m.channel, m.message]), [
        ['rename-n', "The application's publish hook answered an invalid event name (event names starting with pusher: or pusher_internal: are reserved); the message was not delivered"],
        ['rename-n', "The application's publish hook answered an invalid event name (event must be a non-empty string of at most 200 characters); the message was not delivered"],
      ]);
      await until(() => pjGot.length >= 3, 'pusher-js deliveries');
      assert.deepEqual(pjGot, [['shout', { do: 'rename', to: 'shout' }], ['whisper', { text: '***' }], ['chat', { text: 'after' }]]);
    });
  });

  describe('connection metadata', () => {
    it('setMetadata() from the embedding API: seen by the next hook and in info; past the bound a MetadataError, and nothing changes', async () => {
      const c = await native('&t=meta');
      const id = idOf('/ws?format=envelope&t=meta');
      assert.equal(await sb.setMetadata(id, { room: 'kitchen' }), true);
      await subscribeNative(c, 'meta-room');
      assert.deepEqual(seen.get(id)?.subscribed, [{ channel: 'meta-room', metadata: { room: 'kitchen' } }]);
      await assert.rejects(sb.setMetadata(id, { blob: 'x'.repeat(MAX_METADATA) }), (err: unknown) => {
        assert.ok(err instanceof MetadataError);
        assert.match(err.message, /connection metadata is \d+ bytes as JSON; the limit is 64 \(maxConnectionMetadataBytes\)/);
        return true;
      });
      await assert.rejects(sb.setMetadata(id, { n: 10n }), /connection metadata must serialise to JSON/);
      assert.deepEqual((await sb.connection(id))?.metadata, { room: 'kitchen' });
      assert.equal(await sb.setMetadata('no-such-id', { a: 1 }), false);
      assert.equal(await sb.setMetadata(id, undefined), true);
      assert.equal((await sb.connection(id))?.metadata, undefined);
    });
  });

  describe('broadcastAll, targeted sends and metrics', () => {
    it('broadcastAll reaches every connection of the app (pusher-js, raw and envelope native), subscribed or not, and no other app', async () => {
      const pj = await pusher();
      const plain = await connectNative(sb, '/ws');
      natives.push(plain);
      const env = await native();
      const other = await connectNative(sb, '/ws/other-key?format=envelope');
      natives.push(other);
      const got = new Promise((resolve) => pj.bind('announce', resolve));
      sb.broadcastAll('maintenance at noon', { event: 'announce' });
      assert.equal(await within(got, 'pusher-js event'), 'maintenance at noon');
      await plain.text('maintenance at noon');
      assert.deepEqual(await env.message((m) => m.event === 'announce'), { channel: '#all', event: 'announce', data: 'maintenance at noon' });
      await other.sync();
      assert.deepEqual(other.deliveries, []);
    });

    it('broadcastAll(..., { exceptSocketId }) skips that connection', async () => {
      const a = await native();
      const b = await native('&t=except');
      const id = idOf('/ws?format=envelope&t=except');
      sb.broadcastAll('not for b', { exceptSocketId: id });
      await a.message((m) => m.data === 'not for b');
      await b.sync();
      assert.deepEqual(b.deliveries, []);
    });

    it('pusher-js: sendToConnection() reaches that client only (as a global event); connection() describes it with its metadata', async () => {
      const target = await pusher();
      const other = await pusher();
      const id = target.connection.socket_id;
      const seenBy = (client: PusherJs): string[] => {
        const events: string[] = [];
        client.bind_global((event: string, data: unknown) => event === 'direct' && events.push(data as string));
        return events;
      };
      const targetGot = seenBy(target);
      const otherGot = seenBy(other);
      sb.sendToConnection(id, 'for your eyes', { event: 'direct' });
      sb.broadcastAll('after the direct one', { event: 'direct' });
      await until(() => targetGot.length === 2 && otherGot.length === 1, 'the deliveries');
      assert.deepEqual(targetGot, ['for your eyes', 'after the direct one']);
      assert.deepEqual(otherGot, ['after the direct one']);
      const summary = await sb.connection(id);
      assert.equal(summary?.protocol, 'pusher');
      assert.deepEqual(summary?.metadata, { room: 'lobby' });
    });

    it('metrics() holds the figures of GET /stats', async () => {
      const stats = await api(sb, 'GET', '/stats', { token: TOKEN });
      const { success, ...figures } = stats.json;
      assert.equal(success, true);
      assert.deepEqual(sb.metrics(), figures);
      assert.ok((figures.counters as Record<string, number>).hook_failures > 0);
    });
  });
});

describe('embedding hooks: no hooks set', () => {
  it('connections still carry metadata set through the embedding API, and show it in connections()', async () => {
    const sb = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', apps: [{ ...APP, enableClientMessages: true }] });
    try {
      const r = await RawClient.connect(sb);
      const id = await r.socketId();
      await rawSubscribed(r, 'plain');
      assert.equal(await sb.setMetadata(id, { a: 1 }), true);
      assert.deepEqual((await sb.connections({ id }))[0]?.metadata, { a: 1 });
      r.ws.close();
    } finally {
      await sb.close();
    }
  });
});
