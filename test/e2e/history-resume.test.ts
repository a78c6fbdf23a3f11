import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { connectNative, type NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';

interface Delivery {
  readonly channel: string;
  readonly data: unknown;
  readonly position: { epoch: string; offset: number };
}

/** Native clients (envelope format) resuming history channels on one node. */
describe('history and resume (native protocol, local engine)', () => {
  let server: Switchboard;
  const clients: NativeClient[] = [];
  let n = 0;
  const channel = () => `chat-${(n += 1)}`;

  before(async () => {
    server = await startServer({ apps: [{ ...APP, clientPublish: true, clientMessagesPerSecond: 1000, nativeFormat: 'envelope', history: [{ channels: 'chat-*', size: 100, ttlSeconds: 60 }] }] });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  const open = async () => {
    const c = await connectNative(server, `/ws?app=${APP.key}`);
    clients.push(c);
    return c;
  };
  const events = (c: NativeClient, ch: string): Delivery[] => c.json.filter((m) => m.channel === ch && 'position' in m && m.type === undefined) as unknown as Delivery[];
  const subscribe = async (c: NativeClient, ch: string, since?: unknown) => {
    c.send(since === undefined ? { action: 'subscribe', channel: ch } : { action: 'subscribe', channel: ch, since });
    return c.ack('subscribed', ch);
  };
  /** A publisher on `ch`, and the channel's epoch as a watcher sees it once the first messages are out. */
  const publishing = async (ch: string, count: number) => {
    const [sender, watcher] = [await open(), await open()];
    await subscribe(sender, ch);
    await subscribe(watcher, ch);
    await publish(sender, ch, 1, count);
    const first = await watcher.until(() => events(watcher, ch)[0]);
    return { sender, epoch: first.position.epoch };
  };
  const publish = async (sender: NativeClient, ch: string, from: number, to: number) => {
    for (let i = from; i <= to; i += 1) sender.send({ action: 'publish', channel: ch, data: `m${i}` });
    await sender.sync();
  };

  it('gives each message on a history channel its position: one epoch, offsets 1, 2, 3', async () => {
    const ch = channel();
    const [sender, reader] = [await open(), await open()];
    await subscribe(sender, ch);
    await subscribe(reader, ch);
    await publish(sender, ch, 1, 3);
    const got = await reader.until(() => events(reader, ch).length === 3 && events(reader, ch));
    assert.deepEqual(got.map((m) => [m.data, m.position.offset]), [['m1', 1], ['m2', 2], ['m3', 3]]);
    assert.equal(new Set(got.map((m) => m.position.epoch)).size, 1);
  });

  it('replays what a client missed since its last position, in order, then goes live', async () => {
    const ch = channel();
    const { sender, epoch } = await publishing(ch, 5);
    const back = await open();
    const ack = await subscribe(back, ch, { epoch, offset: 2 });
    assert.equal(ack.recovered, true);
    assert.deepEqual(ack.position, { epoch, offset: 5 });
    await publish(sender, ch, 6, 6);
    const got = await back.until(() => events(back, ch).length >= 4 && events(back, ch));
    await back.sync();
    assert.deepEqual(events(back, ch).map((m) => [m.data, m.position.offset]), [['m3', 3], ['m4', 4], ['m5', 5], ['m6', 6]]);
    assert.equal(got[0].position.epoch, epoch);
  });

  it('says recovered: false, and replays nothing, when the epoch is not the channel\'s', async () => {
    const ch = channel();
    const sender = await open();
    await subscribe(sender, ch);
    await publish(sender, ch, 1, 2);
    const back = await open();
    const ack = await subscribe(back, ch, { epoch: 'gone', offset: 1 });
    assert.equal(ack.recovered, false);
    await back.sync();
    assert.deepEqual(events(back, ch), []);
  });

  it('loses and repeats nothing when messages are published while the replay is read', async () => {
    const ch = channel();
    const { sender, epoch } = await publishing(ch, 10);
    const back = await open();
    // The subscribe and the next 40 publishes race: the replay's read and live delivery overlap.
    back.send({ action: 'subscribe', channel: ch, since: { epoch, offset: 3 } });
    await publish(sender, ch, 11, 50);
    await back.until(() => events(back, ch).some((m) => m.position.offset === 50), 5000);
    await back.sync();
    assert.deepEqual(events(back, ch).map((m) => m.position.offset), Array.from({ length: 47 }, (_, i) => i + 4));
  });

  it('answers a malformed `since` with INVALID_MESSAGE and subscribes without a replay', async () => {
    const ch = channel();
    const c = await open();
    c.send({ action: 'subscribe', channel: ch, since: { epoch: 5 } });
    await c.error('INVALID_MESSAGE', ch);
    const ack = await c.ack('subscribed', ch);
    assert.equal(ack.recovered, false);
  });
});
