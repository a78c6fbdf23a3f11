import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { Opcode, RawSocket } from '../helpers/raw-frames.js';
import { startServer } from '../helpers/server.js';
import { signedRequest } from '../helpers/signed-request.js';
import { api } from '../helpers/native.js';
import { until } from '../helpers/wait.js';

/**
 * Slow consumers: clients that stop reading (a bare TCP socket, paused after the upgrade) on a
 * channel with normal subscribers, while the server publishes 64 KB messages as fast as the
 * normal subscribers take them. Each policy has its own app so its counters stand alone.
 */

const QUEUE_BYTES = 1024 * 1024;
const WAIT_MS = 700;
const TOKEN = 'backpressure-token-0123456789';
const app = (id: string, policy: 'close' | 'drop' | 'wait') => ({
  id,
  key: `${id}-key`,
  secret: `${id}-secret`,
  maxQueueBytes: QUEUE_BYTES,
  maxQueueMessages: 1000,
  slowConsumerPolicy: policy,
  slowConsumerWaitMs: WAIT_MS,
});
const CLOSE = { ...app('close-app', 'close'), apiToken: TOKEN };
const DROP = app('drop-app', 'drop');
const WAIT = app('wait-app', 'wait');
/** A queue smaller than the socket's own buffer (16 KiB): the socket never asks for a drain. */
const SMALL_WAIT = { ...app('small-wait-app', 'wait'), maxQueueBytes: 16 * 1024 };
/** A queue bounded by count only (the byte bound is far away). */
const COUNT = { ...app('count-app', 'close'), maxQueueBytes: 64 * 1024 * 1024, maxQueueMessages: 10 };

const PAYLOAD = 'x'.repeat(64 * 1024 - 64);
/** Messages published per event-loop turn; the publisher then waits for the normal subscribers. */
const BATCH = 8;

// The server runs in this process: measure its memory here, with a real collection first.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A normal subscriber: a `ws` client that reads everything and checks the sequence. */
class Reader {
  received = 0;
  outOfOrder = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const seq = /"data":"(\d+):/.exec(String(data).slice(0, 80))?.[1];
      if (seq === undefined) return;
      if (Number(seq) !== this.received) this.outOfOrder += 1;
      this.received += 1;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async subscribe(server: Switchboard, key: string, channel: string): Promise<Reader> {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${key}?protocol=7&client=raw&version=1.0`);
    const reader = new Reader(ws);
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data) => {
        if (String(data).includes('subscription_succeeded')) resolve();
      });
      ws.once('open', () => ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } })));
      ws.once('error', reject);
    });
    return reader;
  }

  /** Resolves once `n` messages have arrived. */
  async reach(n: number): Promise<void> {
    const deadline = Date.now() + 5000;
    while (this.received < n) {
      if (Date.now() > deadline) throw new Error(`normal subscriber stuck at ${this.received}/${n}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** A Pusher client that subscribes, then stops reading its socket. */
async function stalledPusher(server: Switchboard, key: string, channel: string): Promise<RawSocket> {
  const s = await RawSocket.open(server.port, `/app/${key}?protocol=7&client=raw&version=1.0`);
  await s.message((m) => m.event === 'pusher:connection_established');
  s.send({ event: 'pusher:subscribe', data: { channel } });
  await s.message((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === channel);
  s.pause();
  return s;
}

/** A native client (subscribed from the URL, acknowledged) that then stops reading. */
async function stalledNative(server: Switchboard, key: string, channel: string): Promise<RawSocket> {
  const s = await RawSocket.open(server.port, `/ws/${key}?channel=${channel}&ack=1`);
  await s.message((m) => m.type === 'subscribed' && m.channel === channel);
  s.pause();
  return s;
}

/**
 * Publishes messages `from`…`from+count-1` on `channel`, BATCH per turn, waiting after each batch
 * until every reader has them all. Stops early when `stop()` holds after a message.
 */
async function pump(
  server: Switchboard,
  appId: string,
  channel: string,
  readers: Reader[],
  from: number,
  count: number,
  stop?: () => boolean,
  payload = PAYLOAD,
): Promise<number> {
  let sent = from;
  while (sent < from + count) {
    for (let j = 0; j < BATCH && sent < from + count; j++) {
      server.broadcast(channel, `${sent}:${payload}`, { appId, event: 'big' });
      sent += 1;
      if (stop?.()) {
        await Promise.all(readers.map((r) => r.reach(sent)));
        return sent;
      }
    }
    await Promise.all(readers.map((r) => r.reach(sent)));
  }
  return sent;
}

/** The seq numbers of the `big` messages a raw client received, in order. */
function seqs(s: RawSocket): number[] {
  return s.texts.map((t) => /"data":"(\d+):/.exec(t.slice(0, 80))?.[1]).filter((x): x is string => x !== undefined).map(Number);
}

/** Frames (other than the close itself) that arrived after the close frame. */
function afterClose(s: RawSocket): number {
  const i = s.frames.findIndex((f) => f.opcode === Opcode.Close);
  return i < 0 ? 0 : s.frames.length - i - 1;
}

describe('slow consumers', () => {
  let server: Switchboard;
  const counters = (appId: string) => server.hub.counters.snapshot(appId);
  before(async () => {
    server = await startServer({ apps: [CLOSE, DROP, WAIT, COUNT, SMALL_WAIT] });
  });
  after(() => server.close());

  it('close: stalled clients are closed with 4100 (Pusher and native), counted once each, while normal subscribers get every message', async (t) => {
    const readers = [await Reader.subscribe(server, CLOSE.key, 'c'), await Reader.subscribe(server, CLOSE.key, 'c')];
    const stalled = [await stalledPusher(server, CLOSE.key, 'c'), await stalledPusher(server, CLOSE.key, 'c'), await stalledNative(server, CLOSE.key, 'c')];
    t.after(() => {
      for (const r of readers) r.ws.terminate();
      for (const s of stalled) s.destroy();
    });
    const sent = await pump(server, CLOSE.id, 'c', readers, 0, 600, () => counters(CLOSE.id).slow_consumer_closes >= 3);
    assert.equal(counters(CLOSE.id).slow_consumer_closes, 3, `after ${sent} messages`);
    assert.ok(sent < 600, 'the bound (1 MB queue + kernel buffers) is reached well before 37 MB');
    for (const r of readers) {
      assert.equal(r.received, sent);
      assert.equal(r.outOfOrder, 0);
    }
    // Once they read again, each finds the close frame last, after what was queued for it.
    for (const s of stalled) s.resume();
    const [p1, p2, native] = stalled as [RawSocket, RawSocket, RawSocket];
    for (const s of [p1, p2]) {
      const close = await s.closed(5000);
      assert.equal(close.closeCode, 4100);
      assert.equal(close.closeReason, 'Send buffer full: slow consumer disconnected');
      assert.equal(afterClose(s), 0, 'nothing after the close frame');
      const got = seqs(s);
      assert.deepEqual(got, got.map((_, i) => i), 'what did arrive arrived in order, without holes');
    }
    const nativeClose = await native.closed(5000);
    assert.equal(nativeClose.closeCode, 4100);
    assert.equal(afterClose(native), 0);
    // A closed slow consumer is not counted twice, and only the readers remain.
    assert.equal(counters(CLOSE.id).slow_consumer_closes, 3);
    const stats = await signedRequest(server, { path: '/stats', app: CLOSE });
    assert.equal(stats.status, 200);
    const body = stats.json as { connections: number; counters: Record<string, number> };
    assert.equal(body.connections, 2);
    assert.equal(body.counters.slow_consumer_closes, 3);
    assert.equal(body.counters.messages_dropped, 0);
    const native2 = await api(server, 'GET', '/stats', { token: TOKEN });
    assert.equal(native2.status, 200);
    assert.equal((native2.json.counters as Record<string, number>).slow_consumer_closes, 3);
  });

  it('drop: frames for a stalled client are dropped and counted, the connection stays and gets later messages', async (t) => {
    const reader = await Reader.subscribe(server, DROP.key, 'd');
    const stalled = await stalledPusher(server, DROP.key, 'd');
    t.after(() => {
      reader.ws.terminate();
      stalled.destroy();
    });
    const SENT = 300; // ~19 MB
    await pump(server, DROP.id, 'd', [reader], 0, SENT);
    assert.equal(reader.received, SENT);
    assert.equal(reader.outOfOrder, 0);
    const dropped = counters(DROP.id).messages_dropped;
    assert.ok(dropped > 0, 'frames were dropped');
    assert.equal(counters(DROP.id).slow_consumer_closes, 0);
    assert.equal(server.hub.connectionCountOf(DROP.id), 2);

    // Once it reads again, everything that was not dropped arrives, in order.
    stalled.resume();
    await stalled.until(() => seqs(stalled).length >= SENT - dropped, 'the frames that were not dropped');
    server.broadcast('d', 'after', { appId: DROP.id, event: 'marker' });
    await stalled.message((m) => m.event === 'marker');
    const got = seqs(stalled);
    assert.equal(got.length + dropped, SENT);
    assert.ok(got.every((v, i) => i === 0 || v > (got[i - 1])), 'in order');
    assert.equal(got[0], 0, 'the first messages went through before the queue filled');
    assert.equal(stalled.closeFrame, undefined);
    const stats = await signedRequest(server, { path: '/stats', app: DROP });
    assert.equal((stats.json as { counters: Record<string, number> }).counters.messages_dropped, dropped);
  });

  it('wait: a client still stuck after slowConsumerWaitMs is closed with 4100; one that reads again within the window stays', async (t) => {
    const readerA = await Reader.subscribe(server, WAIT.key, 'wa');
    const readerB = await Reader.subscribe(server, WAIT.key, 'wb');
    const stuck = await stalledPusher(server, WAIT.key, 'wa');
    const recovers = await stalledPusher(server, WAIT.key, 'wb');
    t.after(() => {
      readerA.ws.terminate();
      readerB.ws.terminate();
      stuck.destroy();
      recovers.destroy();
    });
    await pump(server, WAIT.id, 'wa', [readerA], 0, 600, () => counters(WAIT.id).messages_dropped > 0);
    const stuckSince = Date.now();
    const droppedA = counters(WAIT.id).messages_dropped;
    await pump(server, WAIT.id, 'wb', [readerB], 0, 600, () => counters(WAIT.id).messages_dropped > droppedA);
    const recoversSince = Date.now();
    recovers.resume();
    assert.equal(counters(WAIT.id).slow_consumer_closes, 0, 'no close while the window is open');

    await until(() => counters(WAIT.id).slow_consumer_closes === 1, 'the stuck client to be closed', WAIT_MS + 2000);
    const waited = Date.now() - stuckSince;
    assert.ok(waited >= WAIT_MS - 20, `closed after ${waited} ms, not before the ${WAIT_MS} ms window`);
    assert.ok(waited < WAIT_MS + 1000, `closed after ${waited} ms`);
    stuck.resume();
    const close = await stuck.closed(5000);
    assert.equal(close.closeCode, 4100);
    assert.equal(afterClose(stuck), 0);

    // The window of the client that recovered has passed too: it is still connected and served.
    const left = recoversSince + WAIT_MS + 200 - Date.now();
    if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
    assert.equal(counters(WAIT.id).slow_consumer_closes, 1);
    server.broadcast('wb', 'after', { appId: WAIT.id, event: 'marker' });
    await recovers.message((m) => m.event === 'marker');
    assert.equal(recovers.closeFrame, undefined);
    assert.equal(readerA.outOfOrder + readerB.outOfOrder, 0);
  });

  it('wait: a stalled client is closed after the window also when its queue is smaller than the socket buffer', async (t) => {
    const stuck = await stalledPusher(server, SMALL_WAIT.key, 'small');
    t.after(() => stuck.destroy());
    const payload = 'x'.repeat(8 * 1024);
    let firstDropAt = 0;
    // Bounded: 16 frames every 2 ms fill the kernel's buffers within a second or two.
    for (let i = 0; i < 3000 && counters(SMALL_WAIT.id).slow_consumer_closes === 0; i++) {
      for (let j = 0; j < 16; j++) server.broadcast('small', payload, { appId: SMALL_WAIT.id });
      if (!firstDropAt && counters(SMALL_WAIT.id).messages_dropped > 0) firstDropAt = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    assert.equal(counters(SMALL_WAIT.id).slow_consumer_closes, 1, 'the stalled client was never closed: its frames were dropped for good');
    const waited = Date.now() - firstDropAt;
    assert.ok(waited >= WAIT_MS - 20, `closed ${waited} ms after the first drop, before the ${WAIT_MS} ms window`);
  });

  it('a client that keeps up is not a slow consumer when more than maxQueueMessages are published in one turn', async (t) => {
    const reader = await Reader.subscribe(server, CLOSE.key, 'burst');
    t.after(() => reader.ws.terminate());
    const before = counters(CLOSE.id);
    for (let i = 0; i < 3000; i++) server.broadcast('burst', `${i}:x`, { appId: CLOSE.id, event: 'big' });
    await reader.reach(3000);
    assert.equal(reader.outOfOrder, 0);
    assert.deepEqual(counters(CLOSE.id), before, 'nothing dropped or closed');
    assert.equal(reader.ws.readyState, WebSocket.OPEN);
  });

  it('maxQueueMessages bounds a stalled client by count: with a 64 MB byte bound, the close comes after a few MB', async (t) => {
    const reader = await Reader.subscribe(server, COUNT.key, 'q');
    const stalled = await stalledPusher(server, COUNT.key, 'q');
    t.after(() => {
      reader.ws.terminate();
      stalled.destroy();
    });
    const size = 4 * 1024;
    const sent = await pump(server, COUNT.id, 'q', [reader], 0, 8000, () => counters(COUNT.id).slow_consumer_closes > 0, 'y'.repeat(size));
    assert.equal(counters(COUNT.id).slow_consumer_closes, 1, `closed after ${sent} messages`);
    assert.ok(sent * size < 16 * 1024 * 1024, `closed after ${((sent * size) / 1024 / 1024).toFixed(1)} MB`);
    assert.equal(reader.received, sent, 'the reader, in the same app, kept everything');
    stalled.resume();
    assert.equal((await stalled.closed(5000)).closeCode, 4100);
  });

  it('memory stays bounded: 50 MB published at four stalled clients grows the heap by a few MB, not by what was pushed', async (t) => {
    const connectedBefore = server.hub.connectionCountOf(DROP.id);
    const readers = [await Reader.subscribe(server, DROP.key, 'm'), await Reader.subscribe(server, DROP.key, 'm')];
    const stalled: RawSocket[] = [];
    for (let i = 0; i < 4; i++) stalled.push(await stalledPusher(server, DROP.key, 'm'));
    t.after(() => {
      for (const r of readers) r.ws.terminate();
      for (const s of stalled) s.destroy();
    });
    const MB = 1024 * 1024;
    gc();
    const before = process.memoryUsage();
    const SENT = 800; // 800 × 64 KB = 50 MB, to each of six subscribers
    const started = Date.now();
    await pump(server, DROP.id, 'm', readers, 0, SENT);
    const elapsed = Date.now() - started;
    // Writes still in flight hold their buffers for a moment: take the lowest of a few readings.
    let afterPush = process.memoryUsage();
    for (let i = 0; i < 10; i++) {
      gc();
      const m = process.memoryUsage();
      if (m.heapUsed + m.arrayBuffers < afterPush.heapUsed + afterPush.arrayBuffers) afterPush = m;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const r of readers) assert.equal(r.received, SENT);
    const heapGrowth = afterPush.heapUsed + afterPush.arrayBuffers - (before.heapUsed + before.arrayBuffers);
    const rssGrowth = afterPush.rss - before.rss;
    t.diagnostic(`50 MB in ${elapsed} ms; heap+buffers +${(heapGrowth / MB).toFixed(1)} MB, rss +${(rssGrowth / MB).toFixed(1)} MB`);
    // Four queues of at most 1 MB each are held; 200 MB was published at the stalled clients.
    assert.ok(heapGrowth < 16 * MB, `heap + buffers grew by ${(heapGrowth / MB).toFixed(1)} MB`);
    assert.ok(rssGrowth < 64 * MB, `rss grew by ${(rssGrowth / MB).toFixed(1)} MB`);
    assert.equal(server.hub.connectionCountOf(DROP.id) - connectedBefore, 6, 'drop policy: the stalled clients are still connected');
  });
});
