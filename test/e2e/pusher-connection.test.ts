import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { PusherJs, RawClient, connected, loopbackOptions, pusherClient, serverSdk } from '../helpers/clients.js';
import { PROTOCOL_QUERY, decoded, rawClient, subscribeRaw, type Frame } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';

const DISABLED = { id: 'disabled-id', key: 'disabled-key', secret: 'disabled-secret', enabled: false };
const QUOTA = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', maxConnections: 1 };
const ACTIVITY_TIMEOUT_SECONDS = 42;
const MAX_MESSAGE_BYTES = 4096;

/** Opens a raw socket on `path` and waits for the server to close it; resolves with every frame and the code. */
async function refused(server: Switchboard, path: string): Promise<{ code: number; frames: Frame[] }> {
  const client = await RawClient.connect(server, path);
  const code = await client.closed;
  return { code, frames: client.messages };
}

/** Subscribes to a fresh public channel: proves the connection still works. */
async function stillUsable(client: RawClient, channel: string): Promise<void> {
  const result = await subscribeRaw(client, channel);
  assert.equal(result.event, 'pusher_internal:subscription_succeeded');
  assert.equal(client.closeCode, undefined);
}

describe('Pusher connection: handshake, refusals, pings and bad frames', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({
      activityTimeoutSeconds: ACTIVITY_TIMEOUT_SECONDS,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      apps: [{ ...APP, enableClientMessages: true }, DISABLED, QUOTA],
    });
  });
  after(() => server.close());

  describe('connection_established', () => {
    it('sends socket_id and activity_timeout as a JSON-encoded string in data', async (t) => {
      const client = await rawClient(server);
      t.after(() => client.close());
      const frame = await client.event('pusher:connection_established');
      assert.deepEqual(Object.keys(frame).sort(), ['data', 'event']);
      assert.equal(typeof frame.data, 'string', 'data must be double-encoded');
      const data = JSON.parse(frame.data as string) as Record<string, unknown>;
      assert.deepEqual(Object.keys(data).sort(), ['activity_timeout', 'socket_id']);
      assert.match(data.socket_id as string, /^\d+\.\d+$/);
      assert.equal(data.activity_timeout, ACTIVITY_TIMEOUT_SECONDS);
    });

    for (const [name, query] of [
      ['names no protocol', 'client=raw&version=1.0'],
      ['names a newer protocol (8)', 'protocol=8&client=raw&version=9.0'],
    ]) {
      it(`serves protocol 7 to a client that ${name}, as the reference servers do`, async (t) => {
        const client = await RawClient.connect(server, `/app/${APP.key}?${query}`);
        t.after(() => client.close());
        assert.match(await client.socketId(), /^\d+\.\d+$/);
        assert.equal((await subscribeRaw(client, 'lenient')).event, 'pusher_internal:subscription_succeeded');
      });
    }

    it('gives every connection a different socket id', async (t) => {
      const clients = await Promise.all([rawClient(server), rawClient(server), rawClient(server)]);
      t.after(() => clients.forEach((c) => c.close()));
      const ids = await Promise.all(clients.map((c) => c.socketId()));
      assert.equal(new Set(ids).size, ids.length);
    });

    it('is accepted by pusher-js, which adopts the server activity timeout', async (t) => {
      const client = pusherClient(server);
      t.after(() => client.disconnect());
      assert.match(await connected(client), /^\d+\.\d+$/);
      assert.equal(client.connection.activityTimeout, ACTIVITY_TIMEOUT_SECONDS * 1000);
    });
  });

  describe('refused connections get pusher:error and the same close code', () => {
    const cases: Array<{ name: string; path: string; code: number; message: string }> = [
      { name: 'unknown app key', path: `/app/no-such-key?${PROTOCOL_QUERY}`, code: 4001, message: 'Application does not exist' },
      { name: 'disabled app', path: `/app/${DISABLED.key}?${PROTOCOL_QUERY}`, code: 4003, message: 'Application is disabled' },
      { name: 'path without a key (/app/)', path: `/app/?${PROTOCOL_QUERY}`, code: 4005, message: 'Path not found: use /app/{key}' },
      { name: 'path with an extra segment', path: `/app/${APP.key}/extra?${PROTOCOL_QUERY}`, code: 4005, message: 'Path not found: use /app/{key}' },
      { name: 'protocol that is not digits', path: `/app/${APP.key}?protocol=7a`, code: 4006, message: 'Invalid protocol version' },
      { name: 'protocol 3 (too old)', path: `/app/${APP.key}?protocol=3`, code: 4007, message: 'Unsupported protocol version 3' },
    ];
    for (const c of cases) {
      it(`${c.name} → ${c.code}`, async () => {
        const { code, frames } = await refused(server, c.path);
        assert.equal(code, c.code);
        assert.deepEqual(frames, [{ event: 'pusher:error', data: { code: c.code, message: c.message } }]);
      });
    }

    it('over the app connection quota → 4004, while the first connection stays up', async (t) => {
      const first = await rawClient(server, QUOTA.key);
      t.after(() => first.close());
      await first.socketId();
      const { code, frames } = await refused(server, `/app/${QUOTA.key}?${PROTOCOL_QUERY}`);
      assert.equal(code, 4004);
      assert.deepEqual(frames, [{ event: 'pusher:error', data: { code: 4004, message: 'Application is over its connection quota' } }]);
      await stillUsable(first, 'quota-still-up');
    });

    it('pusher-js reports the 4001 error and stops without reconnecting', async (t) => {
      const client = new PusherJs('no-such-key', loopbackOptions(server));
      t.after(() => client.disconnect());
      const errors: unknown[] = [];
      client.connection.bind('error', (e: unknown) => errors.push(e));
      await new Promise<void>((resolve) => {
        client.connection.bind('state_change', ({ current }: { current: string }) => {
          if (current === 'disconnected') resolve();
        });
      });
      assert.deepEqual(errors, [{ type: 'WebSocketError', error: { type: 'PusherError', data: { code: 4001, message: 'Application does not exist' } } }]);
      assert.equal(client.connection.state, 'disconnected');
    });
  });

  describe('ping and pong', () => {
    it('answers pusher:ping with pusher:pong', async (t) => {
      const client = await rawClient(server);
      t.after(() => client.close());
      await client.socketId();
      client.send({ event: 'pusher:ping', data: {} });
      assert.deepEqual(await client.event('pusher:pong'), { event: 'pusher:pong', data: '{}' });
    });

    it('answers a WebSocket ping frame with a pong frame carrying the same payload', async (t) => {
      const client = await rawClient(server);
      t.after(() => client.close());
      await client.socketId();
      const pong = new Promise<Buffer>((resolve) => client.ws.once('pong', resolve));
      client.ws.ping(Buffer.from('are-you-there'));
      assert.equal(String(await pong), 'are-you-there');
    });
  });

  describe('bad frames on an open connection', () => {
    const cases: Array<{ name: string; frame: string; message: string }> = [
      { name: 'invalid JSON', frame: '{"event":', message: 'Invalid message: expected a JSON object with a string "event"' },
      { name: 'a JSON array', frame: '[{"event":"pusher:ping"}]', message: 'Invalid message: expected a JSON object with a string "event"' },
      { name: 'a frame with no event', frame: '{"data":{"channel":"x"}}', message: 'Invalid message: expected a JSON object with a string "event"' },
      { name: 'an unknown event', frame: '{"event":"hello","data":{}}', message: 'Unsupported event: hello' },
      {
        name: 'a client sending pusher_internal:subscription_succeeded',
        frame: '{"event":"pusher_internal:subscription_succeeded","channel":"x","data":"{}"}',
        message: 'Unsupported event: pusher_internal:subscription_succeeded',
      },
      { name: 'a client sending pusher:foo', frame: '{"event":"pusher:foo","data":{}}', message: 'Unsupported event: pusher:foo' },
    ];
    cases.forEach((c, i) => {
      it(`${c.name} → pusher:error 4300, connection stays up`, async (t) => {
        const client = await rawClient(server);
        t.after(() => client.close());
        await client.socketId();
        client.send(c.frame);
        const error = await client.event('pusher:error');
        assert.deepEqual(error, { event: 'pusher:error', data: { code: 4300, message: c.message } });
        await stillUsable(client, `after-bad-frame-${i}`);
      });
    });

    it('a binary frame → pusher:error 4300, connection stays up', async (t) => {
      const client = await rawClient(server);
      t.after(() => client.close());
      await client.socketId();
      client.ws.send(Buffer.from(JSON.stringify({ event: 'pusher:ping', data: {} })), { binary: true });
      const error = await client.event('pusher:error');
      assert.deepEqual(decoded(error), { code: 4300, message: 'Binary frames are not supported' });
      assert.equal(indexOf(client, 'pusher:pong'), -1, 'a binary frame must not be interpreted');
      await stillUsable(client, 'after-binary');
    });

    it('a message over maxMessageBytes closes that socket with 1009; other clients keep working', async (t) => {
      const bystander = await rawClient(server);
      const offender = await rawClient(server);
      t.after(() => {
        bystander.close();
        offender.close();
      });
      await subscribeRaw(bystander, 'after-oversize');
      await offender.socketId();
      offender.send({ event: 'pusher:ping', data: { pad: 'x'.repeat(MAX_MESSAGE_BYTES) } });
      assert.equal(await offender.closed, 1009);

      const received = bystander.event('still-alive', 'after-oversize');
      await serverSdk(server).trigger('after-oversize', 'still-alive', { ok: true });
      assert.deepEqual(decoded(await received), { ok: true });
      await stillUsable(bystander, 'after-oversize-2');
    });

    it('a message of exactly maxMessageBytes is accepted', async (t) => {
      const client = await rawClient(server);
      t.after(() => client.close());
      await client.socketId();
      const frame = { event: 'pusher:ping', data: { pad: '' } };
      frame.data.pad = 'x'.repeat(MAX_MESSAGE_BYTES - JSON.stringify(frame).length);
      assert.equal(Buffer.byteLength(JSON.stringify(frame)), MAX_MESSAGE_BYTES);
      client.send(frame);
      await client.event('pusher:pong');
      assert.equal(client.closeCode, undefined);
    });
  });
});

function indexOf(client: RawClient, event: string): number {
  return client.messages.findIndex((m) => m.event === event);
}

// The two tests wait on the clock (about 2 s each), so they run side by side.
describe('Pusher connection: the server pings idle clients', { concurrency: true }, () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({ activityTimeoutSeconds: 1, pongTimeoutSeconds: 1 });
  });
  after(() => server.close());

  /** A raw client that does not answer WebSocket pings on its own (ws's autoPong off). */
  const silentClient = (): Promise<RawClient> => rawClient(server, APP.key, { autoPong: false });

  /** Resolves once `client` has received `count` pusher:ping frames. */
  const pings = (client: RawClient, count: number): Promise<Frame> =>
    client.next(() => client.messages.filter((m) => m.event === 'pusher:ping').length >= count, 5000);

  it('sends pusher:ping (and a ping frame) after activity_timeout, then closes a silent client with 4201', async (t) => {
    const client = await silentClient();
    t.after(() => client.close());
    let pingFrames = 0;
    client.ws.on('ping', () => (pingFrames += 1));
    assert.equal(await client.closed, 4201);
    assert.deepEqual(
      client.messages.map((m) => m.event),
      ['pusher:connection_established', 'pusher:ping', 'pusher:error'],
    );
    assert.deepEqual(client.messages[1], { event: 'pusher:ping', data: '{}' });
    assert.deepEqual(client.messages[2]?.data, { code: 4201, message: 'Pong reply not received' });
    assert.equal(pingFrames, 1);
  });

  it('keeps clients that answer: pusher:pong, any other message, or a pong frame', async (t) => {
    const answersPusherPong = await silentClient();
    const answersAnything = await silentClient();
    const answersPongFrame = await rawClient(server); // ws replies to ping frames by default
    const all = [answersPusherPong, answersAnything, answersPongFrame];
    t.after(() => all.forEach((c) => c.close()));
    answersPusherPong.ws.on('message', (data) => {
      if (String(data).includes('"pusher:ping"')) answersPusherPong.send({ event: 'pusher:pong', data: {} });
    });
    let n = 0;
    answersAnything.ws.on('message', (data) => {
      if (String(data).includes('"pusher:ping"')) answersAnything.send({ event: 'pusher:subscribe', data: { channel: `alive-${(n += 1)}` } });
    });
    // A second pusher:ping only comes once the first was answered: an unanswered one leads to 4201 instead.
    await Promise.all(all.map((c) => pings(c, 2)));
    for (const c of all) assert.equal(c.closeCode, undefined);
    assert.ok(answersAnything.messages.some((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === 'alive-1'));
  });
});
