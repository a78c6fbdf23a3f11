import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { api, closeAll, connectNative, makeJwt, nowSeconds, refusal, subscribeNative, type NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';

const TOKEN = 'default-app-api-token';
const OTHER_TOKEN = 'other-app-api-token!';
const JWT_SECRET = 'native-ws-jwt-secret-0123';
const OTHER = { id: 'other-id', key: 'other-key', secret: 'other-secret' } as const;

/** Does `act` and resolves with the next error frame it causes. */
async function nextError(c: NativeClient, act: () => void): Promise<Record<string, unknown>> {
  const errors = (): Array<Record<string, unknown>> => c.json.filter((m) => m.type === 'error');
  const before = errors().length;
  act();
  return c.until(() => errors()[before]);
}

describe('native WebSocket protocol', () => {
  let server: Switchboard;
  const clients: NativeClient[] = [];
  const connect = async (path = '/ws?ack=1'): Promise<NativeClient> => {
    const c = await connectNative(server, path);
    clients.push(c);
    return c;
  };
  const broadcast = async (channel: string, data: unknown, extra: Record<string, unknown> = {}, token = TOKEN): Promise<void> => {
    const reply = await api(server, 'POST', '/broadcast', { token, json: { channel, data, ...extra } });
    assert.deepEqual(reply, { status: 200, json: { success: true } });
  };

  before(async () => {
    server = await startServer({
      apps: [
        {
          ...APP,
          apiToken: TOKEN,
          jwtSecret: JWT_SECRET,
          clientPublish: true,
          maxEventDataBytes: 1024,
          channelPasswords: { vault: 'open-sesame' },
        },
        { ...OTHER, apiToken: OTHER_TOKEN },
        { id: 'small-id', key: 'small-key', secret: 'small-secret', jwtSecret: JWT_SECRET, maxPresenceMembers: 1 },
        { id: 'off-id', key: 'off-key', secret: 'off-secret', enabled: false },
      ],
    });
  });
  after(async () => {
    await closeAll(clients);
    await server.close();
  });

  describe('endpoints', () => {
    it('delivers a broadcast to a raw /ws client as the exact payload in a text frame', async () => {
      const c = await connect();
      await subscribeNative(c, 'news');
      await broadcast('news', 'hello world');
      const f = await c.text('hello world');
      assert.equal(f.binary, false);
      await c.sync();
      assert.deepEqual(c.deliveries.map((d) => d.text), ['hello world']);
    });

    it('serves /connect (dSock) as an alias of /ws', async () => {
      const c = await connect('/connect?ack=1');
      await subscribeNative(c, 'alias');
      await broadcast('alias', 'via connect');
      await c.text('via connect');
    });

    it('serves /ws/{appKey} for that app only', async () => {
      const other = await connect(`/ws/${OTHER.key}?ack=1`);
      const dflt = await connect(`/ws/${APP.key}?ack=1`);
      await subscribeNative(other, 'shared-name');
      await subscribeNative(dflt, 'shared-name');
      await broadcast('shared-name', 'for-default');
      await broadcast('shared-name', 'for-other', {}, OTHER_TOKEN);
      await other.text('for-other');
      await dflt.text('for-default');
      await other.sync();
      await dflt.sync();
      assert.deepEqual(other.deliveries.map((d) => d.text), ['for-other']);
      assert.deepEqual(dflt.deliveries.map((d) => d.text), ['for-default']);
    });

    it('refuses an unknown app key with 404 APP_NOT_FOUND before the upgrade', async () => {
      assert.deepEqual(await refusal(server, '/ws/no-such-key'), {
        status: 404,
        body: { success: false, error: 'Unknown app key', errorCode: 'APP_NOT_FOUND' },
      });
    });

    it('refuses a disabled app with 403 APP_DISABLED', async () => {
      assert.deepEqual(await refusal(server, '/ws/off-key'), {
        status: 403,
        body: { success: false, error: 'Application is disabled', errorCode: 'APP_DISABLED' },
      });
    });
  });

  describe('subscriptions and acks', () => {
    it('sends no acks to a raw client that did not ask for them', async () => {
      const c = await connect('/ws');
      c.send({ action: 'subscribe', channel: 'quiet' });
      await c.sync();
      assert.deepEqual(c.texts, ['{"type":"pong"}']);
      await broadcast('quiet', 'still subscribed');
      await c.text('still subscribed');
    });

    it('acks subscribe and unsubscribe with ?ack=1, and stops delivery after unsubscribe', async () => {
      const c = await connect('/ws?ack=1');
      c.send({ action: 'subscribe', channel: 'toggle' });
      await c.text('{"type":"subscribed","channel":"toggle"}');
      await broadcast('toggle', 'one');
      await c.text('one');
      c.send({ action: 'unsubscribe', channel: 'toggle' });
      await c.text('{"type":"unsubscribed","channel":"toggle"}');
      await broadcast('toggle', 'two');
      await c.sync();
      assert.deepEqual(c.deliveries.map((d) => d.text), ['one']);
    });

    it('subscribes from the URL with ?channel= (no subscribe message needed)', async () => {
      const c = await connect('/ws?channel=from-url');
      await c.sync();
      await broadcast('from-url', 'auto');
      await c.text('auto');
    });

    it("joins a password room from the URL with plumego's ?room=&room_password=", async () => {
      const c = await connect('/ws?ack=1&room=vault&room_password=open-sesame');
      await c.ack('subscribed', 'vault');
      await broadcast('vault', 'secret stuff');
      await c.text('secret stuff');
    });

    it('refuses an upgrade naming a room with the wrong ?room_password= (403, as plumego), without asking for credentials', async () => {
      for (const query of ['room=vault&room_password=guess', 'room=vault', 'channel=vault&room_password=guess']) {
        assert.deepEqual(await refusal(server, `/ws?${query}`), {
          status: 403,
          body: { success: false, error: 'This channel needs its password', errorCode: 'WRONG_PASSWORD' },
        }, query);
      }
    });

    it('treats channels named like Object.prototype keys as unprotected', async () => {
      const c = await connect('/ws?ack=1');
      for (const name of ['constructor', 'toString', 'hasOwnProperty']) await subscribeNative(c, name);
      await broadcast('constructor', 'plain');
      await c.text('plain');
    });

    it('takes a room password in the subscribe message', async () => {
      const c = await connect();
      c.send({ action: 'subscribe', channel: 'vault' });
      await c.error('WRONG_PASSWORD', 'vault');
      c.send({ action: 'subscribe', channel: 'vault', password: 'nope' });
      await c.until(() => c.json.filter((m) => m.code === 'WRONG_PASSWORD').length === 2);
      await subscribeNative(c, 'vault', 'open-sesame');
      await broadcast('vault', 'in');
      await c.text('in');
    });
  });

  describe('envelopes', () => {
    it('wraps deliveries as {"channel","event","data"} with ?format=envelope, and acks without ?ack', async () => {
      const c = await connect('/ws?format=envelope');
      c.send({ action: 'subscribe', channel: 'env' });
      await c.text('{"type":"subscribed","channel":"env"}');
      await broadcast('env', 'plain text');
      await c.text('{"channel":"env","event":"message","data":"plain text"}');
    });

    it('keeps JSON data as JSON and uses the given event name', async () => {
      const env = await connect('/ws?format=envelope');
      const raw = await connect();
      await subscribeNative(env, 'orders');
      await subscribeNative(raw, 'orders');
      await broadcast('orders', { id: 7, items: ['a'] }, { event: 'created' });
      const m = await env.message((x) => x.event === 'created');
      assert.deepEqual(m, { channel: 'orders', event: 'created', data: { id: 7, items: ['a'] } });
      await raw.text('{"id":7,"items":["a"]}');
    });

    it('tells channels apart for a client on several channels', async () => {
      const env = await connect('/ws?format=envelope');
      await subscribeNative(env, 'left');
      await subscribeNative(env, 'right');
      await broadcast('right', 'R');
      await broadcast('left', 'L');
      await env.until(() => env.deliveries.length === 2);
      assert.deepEqual(
        env.deliveries.map((d) => JSON.parse(d.text) as unknown),
        [
          { channel: 'right', event: 'message', data: 'R' },
          { channel: 'left', event: 'message', data: 'L' },
        ],
      );
    });
  });

  describe('text and binary delivery to users', () => {
    const jwtFor = (sub: string): Promise<string> => makeJwt(JWT_SECRET, { sub, exp: nowSeconds() + 60 });

    it('delivers /send type=binary as a binary frame and type=text as a text frame', async () => {
      const c = await connect(`/ws?jwt=${await jwtFor('bin-user')}`);
      const bytes = Buffer.from([0, 1, 2, 250, 255]);
      const sent = await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'bin-user', type: 'binary' }, body: bytes });
      assert.deepEqual(sent, { status: 200, json: { success: true } });
      const bin = await c.frame((f) => f.binary);
      assert.deepEqual(bin.data, bytes);
      await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'bin-user', type: 'text' }, body: 'héllo' });
      const text = await c.text('héllo');
      assert.equal(text.binary, false);
    });

    it('gives an envelope client binary data as base64 with "encoding":"base64"', async () => {
      const c = await connect(`/ws?format=envelope&jwt=${await jwtFor('b64-user')}`);
      const bytes = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
      await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'b64-user', type: 'binary', event: 'blob' }, body: bytes });
      const m = await c.message((x) => x.event === 'blob');
      assert.equal(m.data, bytes.toString('base64'));
      assert.equal(m.encoding, 'base64');
      assert.equal(Buffer.from(m.data, 'base64').equals(bytes), true);
    });
  });

  describe('client publishing', () => {
    it('delivers a publish to the other subscribers and not back to the sender', async () => {
      const sender = await connect();
      const peer = await connect();
      const env = await connect('/ws?format=envelope');
      for (const c of [sender, peer, env]) await subscribeNative(c, 'room-1');
      sender.send({ action: 'publish', channel: 'room-1', data: 'hi all' });
      await peer.text('hi all');
      await env.text('{"channel":"room-1","event":"message","data":"hi all"}');
      await sender.sync();
      assert.deepEqual(sender.deliveries, []);
    });

    it('publishes JSON data with an event name', async () => {
      const sender = await connect();
      const peer = await connect();
      const env = await connect('/ws?format=envelope');
      for (const c of [sender, peer, env]) await subscribeNative(c, 'room-2');
      sender.send({ action: 'publish', channel: 'room-2', event: 'typing', data: { who: 'me' } });
      await peer.text('{"who":"me"}');
      assert.deepEqual(await env.message((m) => m.event === 'typing'), { channel: 'room-2', event: 'typing', data: { who: 'me' } });
    });

    it('refuses publishing with PUBLISH_DISABLED where the app does not allow it', async () => {
      const c = await connect(`/ws/${OTHER.key}?ack=1`);
      await subscribeNative(c, 'chat');
      c.send({ action: 'publish', channel: 'chat', data: 'x' });
      assert.deepEqual(await c.error('PUBLISH_DISABLED'), {
        type: 'error',
        code: 'PUBLISH_DISABLED',
        message: 'Client publishing is not enabled for this app',
      });
    });

    it('refuses a publish to a channel the client is not subscribed to with NOT_SUBSCRIBED', async () => {
      const c = await connect();
      const listener = await connect();
      await subscribeNative(listener, 'elsewhere');
      c.send({ action: 'publish', channel: 'elsewhere', data: 'sneaky' });
      await c.error('NOT_SUBSCRIBED');
      await listener.sync();
      assert.deepEqual(listener.deliveries, []);
    });

    it('refuses a bad or reserved event name (INVALID_EVENT), missing data (INVALID_MESSAGE) and oversized data (MESSAGE_TOO_LARGE)', async () => {
      const c = await connect();
      const peer = await connect();
      await subscribeNative(c, 'room-3');
      await subscribeNative(peer, 'room-3');
      c.send({ action: 'publish', channel: 'room-3', event: '', data: 'x' });
      assert.equal((await c.error('INVALID_EVENT', 'room-3')).message, 'event must be a non-empty string of at most 200 characters');
      // Pusher subscribers of the channel would take these for the protocol's own events.
      for (const event of ['pusher:error', 'pusher_internal:subscription_succeeded']) {
        const spoofer = await connect();
        await subscribeNative(spoofer, 'room-3');
        spoofer.send({ action: 'publish', channel: 'room-3', event, data: 'x' });
        assert.equal((await spoofer.error('INVALID_EVENT', 'room-3')).message, 'event names starting with pusher: or pusher_internal: are reserved');
      }
      c.send({ action: 'publish', channel: 'room-3' });
      assert.equal((await c.error('INVALID_MESSAGE', 'room-3')).message, 'publish needs data');
      c.send({ action: 'publish', channel: 'room-3', data: 'x'.repeat(1025) });
      assert.equal((await c.error('MESSAGE_TOO_LARGE', 'room-3')).message, 'data is larger than 1024 bytes');
      c.send({ action: 'publish', channel: 'room-3', data: 'x'.repeat(1024) });
      await peer.text('x'.repeat(1024));
      assert.equal(peer.deliveries.length, 1);
    });
  });

  describe('channel names', () => {
    // cadsock, the FrankenPHP hub and plumego take any string as a channel or room.
    for (const name of ['chat:42', 'orders/7', 'salle-été', 'with spaces']) {
      it(`subscribes to and broadcasts on "${name}"`, async () => {
        const c = await connect();
        await subscribeNative(c, name);
        await broadcast(name, `to ${name}`);
        await c.text(`to ${name}`);
      });
    }

    it('joins a room named in the URL: ?room=chat:general', async () => {
      const c = await connect(`/ws?ack=1&room=${encodeURIComponent('chat:general')}`);
      await c.until(() => c.json.find((m) => m.type === 'subscribed' && m.channel === 'chat:general'));
      await broadcast('chat:general', 'hello room');
      await c.text('hello room');
    });
  });

  describe('bad input', () => {
    it('answers ping with {"type":"pong"}', async () => {
      const c = await connect();
      c.send({ action: 'ping' });
      await c.text('{"type":"pong"}');
    });

    it('answers each kind of bad input with its error code and keeps everyone receiving', async () => {
      const bad = await connect();
      const bystander = await connect();
      await subscribeNative(bad, 'steady');
      await subscribeNative(bystander, 'steady');

      const cases: Array<[unknown, Record<string, unknown>]> = [
        ['{not json', { type: 'error', code: 'INVALID_JSON', message: 'Message is not valid JSON' }],
        [[1, 2], { type: 'error', code: 'INVALID_MESSAGE', message: 'Expected a JSON object with a string "action"' }],
        [{ channel: 'steady' }, { type: 'error', code: 'INVALID_MESSAGE', message: 'Expected a JSON object with a string "action"' }],
        [{ action: 'dance' }, { type: 'error', code: 'UNKNOWN_ACTION', message: 'Unknown action: dance' }],
        [
          { action: 'subscribe', channel: 'tab\there' },
          { type: 'error', code: 'INVALID_CHANNEL', message: 'A channel name is 1-200 characters, no control characters, not starting with #' },
        ],
        [
          { action: 'subscribe', channel: '#server-to-user-me' },
          { type: 'error', code: 'INVALID_CHANNEL', message: 'A channel name is 1-200 characters, no control characters, not starting with #' },
        ],
        [{ action: 'unsubscribe' }, { type: 'error', code: 'INVALID_CHANNEL', message: 'unsubscribe needs a channel' }],
      ];
      for (const [input, expected] of cases) {
        assert.deepEqual(await nextError(bad, () => bad.send(input)), expected, `for ${JSON.stringify(input)}`);
      }
      assert.deepEqual(await nextError(bad, () => bad.ws.send(Buffer.from('{"action":"ping"}'), { binary: true })), {
        type: 'error',
        code: 'INVALID_MESSAGE',
        message: 'Send actions as JSON text frames',
      });

      await broadcast('steady', 'after the noise');
      await bad.text('after the noise');
      await bystander.text('after the noise');
      assert.deepEqual(bystander.texts.filter((t) => !t.startsWith('{"type"')), ['after the noise']);
    });

    it("refuses the reserved '#server-to-user-' names with INVALID_CHANNEL", async () => {
      const c = await connect();
      c.send({ action: 'subscribe', channel: '#server-to-user-someone' });
      await c.error('INVALID_CHANNEL');
    });

    it('refuses private- and presence- channels to an anonymous connection with FORBIDDEN_CHANNEL', async () => {
      const c = await connect();
      c.send({ action: 'subscribe', channel: 'private-things' });
      assert.deepEqual(await c.error('FORBIDDEN_CHANNEL', 'private-things'), {
        type: 'error',
        code: 'FORBIDDEN_CHANNEL',
        message: 'Private and presence channels need a connection allowed to join them',
        channel: 'private-things',
      });
      c.send({ action: 'subscribe', channel: 'presence-things' });
      await c.error('FORBIDDEN_CHANNEL', 'presence-things');
      await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'private-things', data: 'hidden' } });
      await c.sync();
      assert.deepEqual(c.deliveries, []);
    });

    it('refuses a presence join beyond maxPresenceMembers with PRESENCE_FULL (a second socket of a member still joins)', async () => {
      const token = (sub: string): Promise<string> => makeJwt(JWT_SECRET, { sub, exp: nowSeconds() + 60, channels: ['presence-*'] });
      const first = await connect(`/ws/small-key?ack=1&jwt=${await token('u1')}`);
      const again = await connect(`/ws/small-key?ack=1&jwt=${await token('u1')}`);
      const second = await connect(`/ws/small-key?ack=1&jwt=${await token('u2')}`);
      await subscribeNative(first, 'presence-tiny');
      await subscribeNative(again, 'presence-tiny');
      second.send({ action: 'subscribe', channel: 'presence-tiny' });
      assert.deepEqual(await second.error('PRESENCE_FULL', 'presence-tiny'), {
        type: 'error',
        code: 'PRESENCE_FULL',
        message: 'The presence channel is full (1 members)',
        channel: 'presence-tiny',
      });
      await second.sync();
    });
  });
});

describe('native keep-alive', () => {
  let server: Switchboard;
  before(async () => {
    // Pusher clients are told 60 s and ping on their own; native clients never do.
    server = await startServer({ activityTimeoutSeconds: 60, nativePingIntervalSeconds: 1 });
  });
  after(() => server.close());

  it('pings a silent native client after nativePingIntervalSeconds, and a Pusher client only after the activity timeout', { timeout: 10_000 }, async (t) => {
    const native = new WebSocket(`ws://127.0.0.1:${server.port}/ws`);
    const pusher = new WebSocket(`ws://127.0.0.1:${server.port}/app/${APP.key}?protocol=7`);
    t.after(() => [native, pusher].forEach((ws) => ws.terminate()));
    let pusherPings = 0;
    pusher.on('ping', () => (pusherPings += 1));
    await Promise.all([once(native, 'open'), once(pusher, 'open')]);
    const openedAt = Date.now();
    await once(native, 'ping');
    const after = Date.now() - openedAt;
    assert.ok(after >= 900 && after < 2500, `native ping ${after} ms after opening`);
    await once(native, 'ping'); // and again once the pong is a second old
    assert.equal(pusherPings, 0);
  });
});
