/**
 * Hostile input: each case proves a clear error or close code, that the server still serves
 * everyone else (a bystander on each protocol receives a broadcast after every case), and that
 * nothing crashes; memory is back near its baseline at the end.
 *
 * No RFC 6455 conformance suite can be installed here: Autobahn|Testsuite is a Python package
 * (and a Docker image), neither on the npm registry nor in Debian. So the framing cases below
 * are written by hand with test/helpers/raw-frames.ts: bad opcodes, RSV bits, stray and
 * interleaved continuations, unmasked frames, fragmented and oversized control frames, bad close
 * payloads, invalid UTF-8 (whole, split over fragments, in a close reason), and lengths that lie.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { connect } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { createServer, type Switchboard } from '../../src/index.js';
import { type RawClient } from '../helpers/clients.js';
import { connectNative, type NativeClient } from '../helpers/native.js';
import { Opcode, RawSocket, buildFrame, closePayload, rawHttp, textFrame } from '../helpers/raw-frames.js';
import { channelAuth, rawClient, subscribeRaw } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { send, signedPath, signedRequest } from '../helpers/signed-request.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MAX_MESSAGE = 256 * 1024;
const MAX_BODY = 64 * 1024;
const TOKEN = 'hostile-token-0123456789';
const HOSTILE_APP = { ...APP, enableClientMessages: true, clientPublish: true, apiToken: TOKEN, clientEventsPerSecond: 1000, clientMessagesPerSecond: 100_000 };
const PUSHER_PATH = `/app/${APP.key}?protocol=7&client=raw&version=1.0`;

type Json = Record<string, unknown>;

describe('hostile input', () => {
  let server: Switchboard;
  let bystander: RawClient;
  let nativeBystander: NativeClient;
  let ticks = 0;
  let baseline: NodeJS.MemoryUsage;
  const sockets: RawSocket[] = [];

  before(async () => {
    server = await startServer({ maxMessageBytes: MAX_MESSAGE, maxRequestBodyBytes: MAX_BODY, handshakeTimeoutMs: 500, apps: [HOSTILE_APP] });
    bystander = await rawClient(server);
    await subscribeRaw(bystander, 'bystander');
    nativeBystander = await connectNative(server, '/ws?channel=bystander&ack=1');
    await nativeBystander.ack('subscribed', 'bystander');
    gc();
    baseline = process.memoryUsage();
  });

  after(async () => {
    for (const s of sockets) s.destroy();
    bystander.close();
    nativeBystander.close();
    await server.close();
  });

  // After every case: the process is alive and the others are still served, on both protocols.
  afterEach(async () => {
    ticks += 1;
    const tick = `tick-${ticks}`;
    server.broadcast('bystander', tick);
    await bystander.next((m) => m.event === 'message' && m.data === tick);
    await nativeBystander.text(tick);
    assert.equal(bystander.closeCode, undefined);
    assert.equal(nativeBystander.closeCode, undefined);
  });

  /** A Pusher connection over a bare socket, past connection_established. */
  async function pusherSocket(): Promise<RawSocket> {
    const s = await RawSocket.open(server.port, PUSHER_PATH);
    sockets.push(s);
    await s.message((m) => m.event === 'pusher:connection_established');
    return s;
  }

  async function nativeSocket(): Promise<RawSocket> {
    const s = await RawSocket.open(server.port, '/ws?ack=1');
    sockets.push(s);
    return s;
  }

  function socketIdOf(s: RawSocket): string {
    const established = s.json.find((m) => m.event === 'pusher:connection_established') as Json;
    return (JSON.parse(established.data as string) as { socket_id: string }).socket_id;
  }

  /** Writes `bytes` and expects the server's close frame with `code`, then the end of the connection. */
  async function expectClose(s: RawSocket, bytes: Buffer | Buffer[], code: number): Promise<void> {
    for (const b of Array.isArray(bytes) ? bytes : [bytes]) s.write(b);
    const close = await s.closed(2000);
    assert.equal(close.closeCode, code, `close code; frames: ${s.describe()}`);
  }

  /** Sends `message` and resolves with the data of the next pusher:error. */
  async function pusherError(s: RawSocket, message: Buffer | string | Json): Promise<{ code: number; message: string }> {
    const seen = s.json.filter((m) => m.event === 'pusher:error').length;
    if (Buffer.isBuffer(message)) s.write(message);
    else s.send(message);
    const errors = await s.until(() => {
      const all = s.json.filter((m) => m.event === 'pusher:error');
      return all.length > seen ? all : undefined;
    }, 'a pusher:error');
    return errors[seen]?.data as { code: number; message: string };
  }

  /** Sends `message` and resolves with the next native error frame. */
  async function nativeError(s: RawSocket, message: string | Json): Promise<Json> {
    const seen = s.json.filter((m) => m.type === 'error').length;
    s.send(message);
    const errors = await s.until(() => {
      const all = s.json.filter((m) => m.type === 'error');
      return all.length > seen ? all : undefined;
    }, 'a native error');
    return errors[seen];
  }

  /** The connection is still up and answering: a pusher:ping gets its pong. */
  async function stillServed(s: RawSocket): Promise<void> {
    const pongs = s.json.filter((m) => m.event === 'pusher:pong').length;
    s.send({ event: 'pusher:ping', data: {} });
    await s.until(() => s.json.filter((m) => m.event === 'pusher:pong').length > pongs, 'a pong');
  }

  const INVALID = { code: 4300, message: 'Invalid message: expected a JSON object with a string "event"' };

  describe('WebSocket framing', () => {
    it('a reserved data opcode (0x3) and a reserved control opcode (0xB) close with 1002', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: 0x3, payload: 'x' }), 1002);
      await expectClose(await nativeSocket(), buildFrame({ opcode: 0xb, payload: '' }), 1002);
    });

    it('RSV1, RSV2 or RSV3 set without an extension closes with 1002', async () => {
      for (const rsv of [4, 2, 1]) await expectClose(await pusherSocket(), textFrame('{"event":"pusher:ping"}', { rsv }), 1002);
    });

    it('an unmasked client frame closes with 1002', async () => {
      await expectClose(await pusherSocket(), textFrame('{"event":"pusher:ping","data":{}}', { mask: false }), 1002);
      await expectClose(await nativeSocket(), textFrame('{"action":"ping"}', { mask: false }), 1002);
    });

    it('a continuation frame with no message to continue closes with 1002', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Continuation, payload: '{"event":"pusher:ping"}' }), 1002);
    });

    it('a new text frame in the middle of a fragmented message closes with 1002', async () => {
      const s = await pusherSocket();
      await expectClose(s, [textFrame('{"event":', { fin: false }), textFrame('"pusher:ping"}')], 1002);
    });

    it('a fragmented control frame (ping without FIN) and a control frame over 125 bytes close with 1002', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Ping, payload: 'a', fin: false }), 1002);
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Ping, payload: 'a'.repeat(126) }), 1002);
    });

    it('a close frame with a 1-byte payload or a status code that may not be sent (1005, 999) closes with 1002', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Close, payload: Buffer.from([3]) }), 1002);
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Close, payload: closePayload(1005) }), 1002);
      await expectClose(await nativeSocket(), buildFrame({ opcode: Opcode.Close, payload: closePayload(999) }), 1002);
    });

    it('invalid UTF-8 in a text frame closes with 1007: a stray byte, an overlong form, a surrogate, a sequence split over fragments', async () => {
      const bad = [Buffer.from([0x7b, 0xff, 0x7d]), Buffer.from([0xc0, 0x80]), Buffer.from([0xed, 0xa0, 0x80])];
      for (const payload of bad) await expectClose(await pusherSocket(), textFrame(payload), 1007);
      await expectClose(await nativeSocket(), textFrame(Buffer.from([0x22, 0xf8, 0x88, 0x80, 0x80, 0x80, 0x22])), 1007);
      // "é" is C3 A9; the second fragment continues with an ASCII byte instead.
      await expectClose(await pusherSocket(), [textFrame(Buffer.from([0x22, 0xc3]), { fin: false }), buildFrame({ opcode: Opcode.Continuation, payload: Buffer.from([0x41, 0x22]) })], 1007);
    });

    it('invalid UTF-8 in a close frame’s reason closes with 1007', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Close, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff])]) }), 1007);
    });

    it('valid fragmentation is reassembled: a subscribe in three fragments with a ping between them, and a character split over fragments', async () => {
      const s = await pusherSocket();
      const text = Buffer.from(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'frag-e' } }));
      s.write(
        Buffer.concat([
          textFrame(text.subarray(0, 10), { fin: false }),
          buildFrame({ opcode: Opcode.Ping, payload: 'mid' }),
          buildFrame({ opcode: Opcode.Continuation, payload: text.subarray(10, 30), fin: false }),
          buildFrame({ opcode: Opcode.Continuation, payload: text.subarray(30) }),
        ]),
      );
      await s.message((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === 'frag-e');
      const pong = s.frames.find((f) => f.opcode === Opcode.Pong);
      assert.equal(pong?.payload.toString(), 'mid', 'the ping between fragments was answered');
      // A message whose data holds "é" split between its two bytes.
      const sub = Buffer.from('{"event":"pusher:ping","data":"café"}');
      const cut = sub.indexOf(0xc3) + 1;
      s.write(Buffer.concat([textFrame(sub.subarray(0, cut), { fin: false }), buildFrame({ opcode: Opcode.Continuation, payload: sub.subarray(cut) })]));
      await s.message((m) => m.event === 'pusher:pong');
      server.broadcast('frag-e', 'hello');
      await s.message((m) => m.event === 'message' && m.channel === 'frag-e');
    });

    it('a binary frame gets pusher:error 4300 and the connection stays', async () => {
      const s = await pusherSocket();
      assert.deepEqual(await pusherError(s, buildFrame({ opcode: Opcode.Binary, payload: Buffer.from([1, 2, 3]) })), {
        code: 4300,
        message: 'Binary frames are not supported',
      });
      await stillServed(s);
    });

    it('a client close frame is answered with the same code and the connection ends', async () => {
      const s = await pusherSocket();
      await expectClose(s, buildFrame({ opcode: Opcode.Close, payload: closePayload(1000, 'bye') }), 1000);
    });
  });

  describe('oversized frames and messages', () => {
    it('a header announcing 100 MB closes with 1009 at once, without waiting for (or buffering) the payload', async () => {
      const s = await pusherSocket();
      const started = Date.now();
      // The header and a few bytes of payload, then nothing: the server must not wait for the rest.
      await expectClose(s, buildFrame({ opcode: Opcode.Text, payload: '{"event":', announceLength: 100 * 1024 * 1024 }), 1009);
      assert.ok(Date.now() - started < 1000, `closed after ${Date.now() - started} ms`);
      await expectClose(await nativeSocket(), buildFrame({ opcode: Opcode.Binary, payload: '', announceLength: 100 * 1024 * 1024 }), 1009);
    });

    it('a 64-bit length with its top bit set closes with 1009', async () => {
      await expectClose(await pusherSocket(), buildFrame({ opcode: Opcode.Text, announceLength: 2n ** 63n }), 1009);
    });

    it('fragments that are each small but add up to more than maxMessageBytes close with 1009', async () => {
      const s = await pusherSocket();
      const chunk = 'a'.repeat(64 * 1024);
      const frames = [textFrame(`{"event":"x","data":"${chunk}`, { fin: false })];
      for (let i = 0; i < 4; i++) frames.push(buildFrame({ opcode: Opcode.Continuation, payload: chunk, fin: false }));
      frames.push(buildFrame({ opcode: Opcode.Continuation, payload: '"}' }));
      await expectClose(s, frames, 1009);
    });
  });

  describe('JSON', () => {
    it('text that is not JSON, JSON that is not an object, and objects without a string event get 4300', async () => {
      const s = await pusherSocket();
      for (const text of ['hello', '{"event":', '[]', '"pusher:ping"', '42', 'null', 'true', '{"event":1}', '{"event":"pusher:ping","channel":5}', '{}']) {
        assert.deepEqual(await pusherError(s, text), INVALID, text);
      }
      await stillServed(s);
    });

    it('huge JSON just under maxMessageBytes is parsed and answered (a padded ping, a 15k-key object)', async () => {
      const s = await pusherSocket();
      const base = '{"event":"pusher:ping","data":""}';
      s.send(base.replace('""', `"${'x'.repeat(MAX_MESSAGE - base.length)}"`));
      await s.message((m) => m.event === 'pusher:pong');
      const keys: Json = {};
      for (let i = 0; i < 15_000; i++) keys[`k${i}`] = i;
      const wide = JSON.stringify({ event: 'wide', data: keys });
      assert.ok(wide.length < MAX_MESSAGE);
      assert.deepEqual(await pusherError(s, wide), { code: 4300, message: 'Unsupported event: wide' });
    });

    it('deeply nested JSON (100k levels) gets 4300 or a clear refusal, never a crash', async () => {
      const s = await pusherSocket();
      const depth = 100_000;
      assert.deepEqual(await pusherError(s, '['.repeat(depth)), INVALID, 'unterminated');
      assert.deepEqual(await pusherError(s, '['.repeat(depth) + ']'.repeat(depth)), INVALID, 'an array');
      const deepArray = '['.repeat(depth) + ']'.repeat(depth);
      assert.deepEqual(await pusherError(s, `{"event":"pusher:subscribe","data":${deepArray}}`), {
        code: 4300,
        message: 'pusher:subscribe needs data.channel: a valid channel name',
      });
      // A client event must re-serialise its data: nesting this deep cannot be.
      const channel = 'private-deep';
      s.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(socketIdOf(s), channel) } });
      await s.message((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === channel);
      assert.deepEqual(await pusherError(s, `{"event":"client-deep","channel":"${channel}","data":${deepArray}}`), {
        code: 4300,
        message: 'Client event data is nested too deeply',
      });
      await stillServed(s);

      const n = await nativeSocket();
      n.send({ action: 'subscribe', channel: 'deep' });
      await n.message((m) => m.type === 'subscribed');
      assert.deepEqual(await nativeError(n, `{"action":"publish","channel":"deep","data":${deepArray}}`), {
        type: 'error',
        code: 'INVALID_MESSAGE',
        message: 'data is nested too deeply',
        channel: 'deep',
      });
      assert.deepEqual(await nativeError(n, '['.repeat(depth)), { type: 'error', code: 'INVALID_JSON', message: 'Message is not valid JSON' });
      assert.deepEqual(await nativeError(n, '[]'), { type: 'error', code: 'INVALID_MESSAGE', message: 'Expected a JSON object with a string "action"' });
    });

    it('deeply nested JSON data through the HTTP APIs gets 400 naming the problem', async () => {
      const deep = `{"name":"e","channel":"deep","data":${'['.repeat(20_000)}${']'.repeat(20_000)}}`; // under the body limit, over JSON.stringify's depth
      const rest = await signedRequest(server, { path: '/events', body: deep });
      assert.equal(rest.status, 400);
      assert.deepEqual(rest.json, { error: 'data is nested too deeply' });
      const sent = await send(server, 'POST', `/broadcast?token=${TOKEN}`, Buffer.from(deep), undefined, { 'content-type': 'application/json' });
      assert.equal(sent.status, 400);
      assert.deepEqual(sent.json, { success: false, error: 'data is nested too deeply', errorCode: 'INVALID_MESSAGE' });
    });
  });

  describe('values JSON.parse builds but cannot print back, and prototype keys', () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000); // over JSON.stringify's depth, under every size limit

    it('a channel name that is not a string gets 400 on both APIs, also one that cannot be printed', async () => {
      const sent = await send(server, 'POST', `/broadcast?token=${TOKEN}`, Buffer.from('{"channels":[{"toString":1}],"data":"x"}'), undefined, {
        'content-type': 'application/json',
      });
      assert.equal(sent.status, 400);
      assert.deepEqual(sent.json, { success: false, error: 'invalid channel name: {"toString":1}', errorCode: 'INVALID_CHANNEL' });
      const rest = await signedRequest(server, { path: '/events', body: `{"name":"e","channels":[${deep}],"data":"x"}` });
      assert.equal(rest.status, 400);
      assert.deepEqual(rest.json, { error: 'invalid channel name: a deeply nested array' });
    });

    it('"__proto__" in a native API body is a key like any other, not where parameters come from', async () => {
      const sent = await send(server, 'POST', `/broadcast?token=${TOKEN}`, Buffer.from('{"__proto__":{"channel":"bystander","data":"y"}}'), undefined, {
        'content-type': 'application/json',
      });
      assert.equal(sent.status, 400);
      assert.equal((sent.json as Json).errorCode, 'MISSING_CHANNEL');
    });

    it('a claim expiration or duration too large to store gets 400', async () => {
      const expiration = await send(server, 'POST', `/claim?token=${TOKEN}&user=u&expiration=${'9'.repeat(400)}`);
      assert.equal(expiration.status, 400);
      assert.equal((expiration.json as Json).errorCode, 'INVALID_EXPIRATION');
      const duration = await send(server, 'POST', `/claim?token=${TOKEN}&user=u&duration=${'9'.repeat(30)}`);
      assert.equal(duration.status, 400);
      assert.equal((duration.json as Json).errorCode, 'INVALID_DURATION');
    });

    it('presence user_info nested too deeply gets InvalidChannelData 400; the connection stays', async () => {
      const s = await pusherSocket();
      const channel = 'presence-deep';
      const data = `{"user_id":"deep","user_info":${deep}}`;
      s.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(socketIdOf(s), channel, data), channel_data: data } });
      const refusal = await s.message((m) => m.event === 'pusher:subscription_error' && m.channel === channel);
      assert.deepEqual(refusal.data, { type: 'InvalidChannelData', error: 'channel_data.user_info is nested too deeply', status: 400 });
      await stillServed(s);
    });

    it('a sign-in whose user_info is nested too deeply closes with 4009', async () => {
      const s = await pusherSocket();
      const userData = `{"id":"deep","user_info":${deep}}`;
      const auth = `${APP.key}:${createHmac('sha256', APP.secret).update(`${socketIdOf(s)}::user::${userData}`).digest('hex')}`;
      s.send({ event: 'pusher:signin', data: { user_data: userData, auth } });
      const close = await s.closed(2000);
      assert.equal(close.closeCode, 4009);
    });

    it('a presence member whose id is "__proto__" is listed like any other', async () => {
      const s = await pusherSocket();
      const channel = 'presence-proto';
      const data = JSON.stringify({ user_id: '__proto__', user_info: { name: 'p' } });
      s.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(socketIdOf(s), channel, data), channel_data: data } });
      const ok = await s.message((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === channel);
      const presence = (JSON.parse(ok.data as string) as { presence: { ids: string[]; hash: Json; count: number } }).presence;
      assert.deepEqual(presence.ids, ['__proto__']);
      assert.ok(Object.hasOwn(presence.hash, '__proto__'), JSON.stringify(presence));
      assert.deepEqual(presence.hash['__proto__'], { name: 'p' });
    });
  });

  describe('unknown events and actions, pusher_internal: from a client', () => {
    it('unknown events get 4300 naming the event (cut to 64 characters); the connection stays', async () => {
      const s = await pusherSocket();
      assert.deepEqual(await pusherError(s, { event: 'pusher:explode', data: {} }), { code: 4300, message: 'Unsupported event: pusher:explode' });
      assert.deepEqual(await pusherError(s, { event: 'x'.repeat(1000) }), { code: 4300, message: `Unsupported event: ${'x'.repeat(64)}` });
      assert.deepEqual(await pusherError(s, { event: 'pusher:connection_established', data: {} }), {
        code: 4300,
        message: 'Unsupported event: pusher:connection_established',
      });
      await stillServed(s);
    });

    it('pusher_internal: events from a client are refused with 4300 and reach nobody', async () => {
      const s = await pusherSocket();
      const channel = 'presence-room';
      const data = JSON.stringify({ user_id: 'eve' });
      s.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(socketIdOf(s), channel, data), channel_data: data } });
      await s.message((m) => m.event === 'pusher_internal:subscription_succeeded');
      const other = await pusherSocket();
      const otherData = JSON.stringify({ user_id: 'bob' });
      other.send({ event: 'pusher:subscribe', data: { channel, auth: channelAuth(socketIdOf(other), channel, otherData), channel_data: otherData } });
      await other.message((m) => m.event === 'pusher_internal:subscription_succeeded');

      for (const event of ['pusher_internal:member_added', 'pusher_internal:member_removed', 'pusher_internal:subscription_succeeded']) {
        assert.deepEqual(await pusherError(s, { event, channel, data: JSON.stringify({ user_id: 'mallory' }) }), { code: 4300, message: `Unsupported event: ${event}` });
      }
      server.broadcast(channel, 'after');
      await other.message((m) => m.event === 'message');
      const forged = other.json.filter((m) => JSON.stringify(m).includes('mallory'));
      assert.deepEqual(forged, []);
    });

    it('unknown native actions get UNKNOWN_ACTION', async () => {
      const n = await nativeSocket();
      assert.deepEqual(await nativeError(n, { action: 'explode' }), { type: 'error', code: 'UNKNOWN_ACTION', message: 'Unknown action: explode' });
      assert.deepEqual(await nativeError(n, { action: 'y'.repeat(500) }), { type: 'error', code: 'UNKNOWN_ACTION', message: `Unknown action: ${'y'.repeat(64)}` });
    });
  });

  describe('subscribe floods and invalid channel names', () => {
    it('thousands of subscribes from one connection: 100 succeed, every other one gets LimitReached, and the server keeps serving', async () => {
      const s = await pusherSocket();
      const FLOOD = 3000;
      // Sent in bursts of 500 frames per write, as fast as the answers come back.
      for (let start = 0; start < FLOOD; start += 500) {
        const burst: Buffer[] = [];
        for (let i = start; i < start + 500; i++) burst.push(textFrame(JSON.stringify({ event: 'pusher:subscribe', data: { channel: `flood-${i}` } })));
        s.write(Buffer.concat(burst));
        await s.until(
          () => s.json.filter((m) => m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error').length >= start + 500,
          'the answers to a burst',
        );
      }
      const ok = s.json.filter((m) => m.event === 'pusher_internal:subscription_succeeded');
      const refused = s.json.filter((m) => m.event === 'pusher:subscription_error');
      assert.equal(ok.length, 100);
      assert.equal(refused.length, FLOOD - 100);
      assert.deepEqual(refused[0]?.data, { type: 'LimitReached', error: 'A connection may subscribe to at most 100 channels', status: 403 });
      assert.equal(server.hub.channels(APP.id, 'flood-').size, 100);
      s.destroy();
      await new Promise<void>((resolve) => {
        const check = (): void => (server.hub.channels(APP.id, 'flood-').size === 0 ? resolve() : void setTimeout(check, 5));
        check();
      });
    });

    it('five thousand subscribes in a single write are answered one by one (100 succeed) without closing the client', async () => {
      const s = await pusherSocket();
      const FLOOD = 5000;
      const burst: Buffer[] = [];
      for (let i = 0; i < FLOOD; i++) burst.push(textFrame(JSON.stringify({ event: 'pusher:subscribe', data: { channel: `burst-${i}` } })));
      s.write(Buffer.concat(burst));
      await s.until(
        () => s.json.filter((m) => m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error').length >= FLOOD,
        'an answer to every subscribe',
        5000,
      );
      assert.equal(s.json.filter((m) => m.event === 'pusher_internal:subscription_succeeded').length, 100);
      assert.equal(s.closeFrame, undefined, 'answering a flood does not make the client a slow consumer');
      await stillServed(s);
      s.destroy();
    });

    it('invalid channel names get 4300 (Pusher), INVALID_CHANNEL (native) and 400 (REST)', async () => {
      const s = await pusherSocket();
      const channelsBefore = server.hub.channels(APP.id).size;
      const bad: unknown[] = ['', 'has space', 'ünïcode', 'a'.repeat(201), 'semi:colon', '#server-to-user-', '#other', 42, null, ['a'], { a: 1 }];
      for (const channel of bad) {
        assert.deepEqual(await pusherError(s, { event: 'pusher:subscribe', data: { channel } }), {
          code: 4300,
          message: 'pusher:subscribe needs data.channel: a valid channel name',
        }, JSON.stringify(channel));
      }
      assert.deepEqual(await pusherError(s, { event: 'pusher:subscribe' }), { code: 4300, message: 'pusher:subscribe needs data.channel: a valid channel name' });
      assert.deepEqual(await pusherError(s, { event: 'pusher:subscribe', data: 'not-an-object' }), {
        code: 4300,
        message: 'pusher:subscribe needs data.channel: a valid channel name',
      });
      assert.equal(server.hub.channels(APP.id).size, channelsBefore, 'no channel was created');

      const n = await nativeSocket();
      for (const channel of ['line\nbreak', '#server-to-user-1', 'a'.repeat(201), 7, '']) {
        const error = await nativeError(n, { action: 'subscribe', channel });
        assert.equal(error.code, 'INVALID_CHANNEL', JSON.stringify(channel));
      }
      const rest = await signedRequest(server, { path: '/events', body: { name: 'e', channel: 'has space', data: '{}' } });
      assert.deepEqual({ status: rest.status, json: rest.json }, { status: 400, json: { error: 'invalid channel name: "has space"' } });
    });
  });

  describe('forged and replayed signatures', () => {
    it('private channel auth with the wrong key, the wrong secret or another socket’s id is refused with AuthError 401', async () => {
      const s = await pusherSocket();
      const other = await pusherSocket();
      const channel = 'private-vault';
      const wrongSecret = `${APP.key}:${createHmac('sha256', 'not-the-secret').update(`${socketIdOf(s)}:${channel}`).digest('hex')}`;
      const wrongKey = channelAuth(socketIdOf(s), channel).replace(APP.key, 'other-key');
      const replayed = channelAuth(socketIdOf(other), channel);
      for (const auth of [wrongSecret, wrongKey, replayed, 'garbage', '', `${APP.key}:`]) {
        const result = await subscribeOn(s, channel, { auth });
        assert.deepEqual(result, { event: 'pusher:subscription_error', channel, data: { type: 'AuthError', error: 'Invalid signature', status: 401 } }, auth);
      }
      assert.equal(server.hub.channelInfo(APP.id, channel).occupied, false);
    });

    it('presence channel_data signed for another user id is refused', async () => {
      const s = await pusherSocket();
      const channel = 'presence-vault';
      const signedFor = JSON.stringify({ user_id: 'alice' });
      const sent = JSON.stringify({ user_id: 'mallory' });
      const result = await subscribeOn(s, channel, { auth: channelAuth(socketIdOf(s), channel, signedFor), channel_data: sent });
      assert.deepEqual(result, { event: 'pusher:subscription_error', channel, data: { type: 'AuthError', error: 'Invalid signature', status: 401 } });
      assert.equal(server.hub.channelInfo(APP.id, channel).occupied, false);
    });

    it('a second sign-in as another user closes the connection with 4009', async () => {
      const s = await pusherSocket();
      const signIn = (id: string): Json => {
        const userData = JSON.stringify({ id });
        return { event: 'pusher:signin', data: { user_data: userData, auth: `${APP.key}:${createHmac('sha256', APP.secret).update(`${socketIdOf(s)}::user::${userData}`).digest('hex')}` } };
      };
      s.send(signIn('alice'));
      await s.message((m) => m.event === 'pusher:signin_success');
      s.send(signIn('mallory'));
      const close = await s.closed();
      assert.equal(close.closeCode, 4009);
      assert.equal(close.closeReason, 'Connection is already signed in as another user');
      const error = s.json.find((m) => m.event === 'pusher:error');
      assert.deepEqual(error?.data, { code: 4009, message: 'Connection is already signed in as another user' });
    });

    it('REST: timestamps outside ±600 s, a body that does not match body_md5, and a replayed signature over changed parameters get 401', async () => {
      const now = Math.floor(Date.now() / 1000);
      const body = { name: 'e', channel: 'c', data: '{}' };
      const window = "auth_timestamp is more than 600 s away from the server's clock";
      for (const timestamp of [now - 610, now + 610, 0]) {
        const r = await signedRequest(server, { path: '/events', body, timestamp });
        assert.deepEqual({ status: r.status, json: r.json }, { status: 401, json: { error: window } }, String(timestamp));
      }
      assert.equal((await signedRequest(server, { path: '/events', body, timestamp: now - 590 })).status, 200, 'inside the window');
      const md5 = await signedRequest(server, { path: '/events', body, md5Of: JSON.stringify({ ...body, data: '{"x":1}' }) });
      assert.deepEqual({ status: md5.status, json: md5.json }, { status: 401, json: { error: 'body_md5 does not match the body' } });
      // A captured request replayed with another channel in the query is no longer what was signed.
      const changed = await signedRequest(server, { path: '/channels', query: { filter_by_prefix: 'a' }, tamper: (q) => q.set('filter_by_prefix', 'b') });
      assert.deepEqual({ status: changed.status, json: changed.json }, { status: 401, json: { error: 'Invalid signature' } });
      // The same signed path with a different body.
      const path = signedPath({ path: '/events', body });
      const swapped = await send(server, 'POST', path, Buffer.from(JSON.stringify({ ...body, channel: 'other' })));
      assert.deepEqual({ status: swapped.status, json: swapped.json }, { status: 401, json: { error: 'body_md5 does not match the body' } });
    });

    /** Sends a subscribe and resolves with the channel's answer, trimmed to event/channel/data. */
    async function subscribeOn(s: RawSocket, channel: string, extra: Json): Promise<Json> {
      const seen = s.json.length;
      s.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
      const answer = await s.until(
        () => s.json.slice(seen).find((m) => (m.event === 'pusher:subscription_error' || m.event === 'pusher_internal:subscription_succeeded') && m.channel === channel),
        'the subscription answer',
      );
      return { event: answer.event, channel: answer.channel, data: answer.data };
    }
  });

  describe('HTTP: slowloris, header floods, oversized bodies', () => {
    it('a slowloris upgrade is dropped with 408 after the handshake timeout', async () => {
      const started = Date.now();
      const r = await rawHttp(server.port, [`GET ${PUSHER_PATH} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n`, 'X-Slow: 1\r\n'], { gapMs: 200 });
      assert.equal(r.status, 408);
      assert.ok(r.endedAt - started < 1500, `dropped after ${r.endedAt - started} ms`);
    });

    it('a request target the URL parser cannot read gets 400, on an upgrade and on an API call', async () => {
      const upgrade = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';
      for (const path of [`http://[::1/app/${APP.key}?protocol=7`, 'http://[::1/ws']) {
        const r = await rawHttp(server.port, [`GET ${path} HTTP/1.1\r\nHost: x\r\n${upgrade}\r\n`]);
        assert.equal(r.status, 400, path);
        assert.deepEqual(JSON.parse(r.body), { error: 'Malformed URL' });
      }
      const api = await rawHttp(server.port, [`POST http://[::1/apps/${APP.id}/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}`]);
      assert.equal(api.status, 400);
      assert.deepEqual(JSON.parse(api.body), { error: 'Malformed URL' });
    });

    it('a header flood gets 431', async () => {
      const r = await rawHttp(server.port, [`GET ${PUSHER_PATH} HTTP/1.1\r\nHost: x\r\nCookie: ${'c=1; '.repeat(10_000)}\r\n\r\n`]);
      assert.equal(r.status, 431);
    });

    it('a request body over the API limit gets 413 and the connection is closed, not left waiting for the rest', async () => {
      const path = signedPath({ path: '/events', body: '{}' });
      const r = await rawHttp(server.port, [`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${MAX_BODY * 100}\r\n\r\n`, 'a'.repeat(MAX_BODY + 1)]);
      assert.equal(r.status, 413);
      assert.deepEqual(JSON.parse(r.body), { error: `Request body is larger than ${MAX_BODY} bytes` });
      const native = await rawHttp(server.port, [
        `POST /broadcast HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
        `${(MAX_BODY + 10).toString(16)}\r\n${'a'.repeat(MAX_BODY + 10)}\r\n`,
      ]);
      assert.equal(native.status, 413);
      assert.equal((JSON.parse(native.body) as Json).errorCode, 'BODY_TOO_LARGE');
    });
  });

  it('memory is back near its baseline after all of the above', async (t) => {
    for (const s of sockets.splice(0)) s.destroy();
    const deadline = Date.now() + 3000;
    while (server.hub.size > 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(server.hub.size, 2, 'only the bystanders remain');
    // Writes still in flight hold their buffers for a moment: take the lowest of a few readings.
    let growth = Infinity;
    for (let i = 0; i < 10; i++) {
      gc();
      const now = process.memoryUsage();
      growth = Math.min(growth, now.heapUsed + now.arrayBuffers - (baseline.heapUsed + baseline.arrayBuffers));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const MB = 1024 * 1024;
    t.diagnostic(`heap + buffers ${growth >= 0 ? '+' : ''}${(growth / MB).toFixed(1)} MB over the baseline`);
    assert.ok(growth < 16 * MB, `heap + buffers grew by ${(growth / MB).toFixed(1)} MB`);
  });
});

describe('clients that go away mid-body', () => {
  it('are not logged as server errors, on either API', async () => {
    const lines: Json[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Json) });
    const server = await createServer({ host: '127.0.0.1', port: 0, apps: [{ ...APP, apiToken: TOKEN }] }, { log });
    try {
      for (const head of [`POST /broadcast?token=${TOKEN} HTTP/1.1`, `POST ${signedPath({ path: '/events', body: '{}' })} HTTP/1.1`]) {
        const socket = connect({ host: '127.0.0.1', port: server.port });
        socket.write(`${head}\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"chan`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        socket.destroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(lines.filter((l) => (l.level as number) >= 50), []);
    } finally {
      await server.close();
    }
  });
});
