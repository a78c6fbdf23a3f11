import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { api, closeAll, connectNative, subscribeNative, type NativeClient } from '../helpers/native.js';
import { eventually } from '../helpers/wait.js';
import { APP, startServer } from '../helpers/server.js';

const TOKEN = 'idempotency-api-token-0123456789';

/** What a pusher-js client got on a channel, event names in order. */
function received(client: PusherJs, channel: string): string[] {
  const got: string[] = [];
  client.channel(channel).bind_global((event: string, data: unknown) => {
    if (!event.startsWith('pusher')) got.push(`${event}:${String(data)}`);
  });
  return got;
}

/** Publishes with the same key are delivered once: the `pusher` SDK's trigger and triggerBatch, the native API's header. */
describe('idempotent publishing (local engine)', () => {
  let server: Switchboard;
  let sdk: Pusher;
  let client: PusherJs;
  const natives: NativeClient[] = [];
  let n = 0;
  const channel = (base = 'news') => `${base}-${(n += 1)}`;
  const key = () => `key-${process.pid}-${(n += 1)}`;

  before(async () => {
    server = await startServer({ apps: [{ ...APP, apiToken: TOKEN, nativeFormat: 'envelope', history: [{ channels: 'chat-*', size: 10, ttlSeconds: 60 }] }] });
    sdk = serverSdk(server);
    client = pusherClient(server);
    await connected(client);
  });
  after(async () => {
    client.disconnect();
    await closeAll(natives);
    await server.close();
  });

  /** Subscribes the pusher-js client; `done` publishes a last event without a key and waits for it, so everything before has arrived. */
  const watch = async (ch: string) => {
    await subscribed(client, ch);
    const got = received(client, ch);
    const done = async () => {
      await sdk.trigger(ch, 'end', 'x');
      await eventually(() => got.includes('end:x'), `end on ${ch}`);
      return got.slice(0, -1);
    };
    return done;
  };

  it('delivers a trigger retried with the same idempotency_key once, and acknowledges the retry', async () => {
    const ch = channel();
    const done = await watch(ch);
    const k = key();
    const first = await sdk.trigger(ch, 'order', 'o1', { idempotency_key: k } as Pusher.TriggerParams);
    const retry = await sdk.trigger(ch, 'order', 'o1', { idempotency_key: k } as Pusher.TriggerParams);
    assert.deepEqual([first.status, retry.status], [200, 200]);
    await sdk.trigger(ch, 'order', 'o2', { idempotency_key: key() } as Pusher.TriggerParams);
    await sdk.trigger(ch, 'plain', 'p'); // no key: never deduplicated
    await sdk.trigger(ch, 'plain', 'p');
    assert.deepEqual(await done(), ['order:o1', 'order:o2', 'plain:p', 'plain:p']);
  });

  it('deduplicates batch_events per item, within a batch and across retries of it', async () => {
    const ch = channel();
    const done = await watch(ch);
    const [k1, k2] = [key(), key()];
    const batch = [
      { channel: ch, name: 'a', data: '1', idempotency_key: k1 },
      { channel: ch, name: 'b', data: '2', idempotency_key: k2 },
      { channel: ch, name: 'a', data: '1', idempotency_key: k1 },
      { channel: ch, name: 'c', data: '3' },
    ] as Pusher.BatchEvent[];
    assert.equal((await sdk.triggerBatch(batch)).status, 200);
    assert.equal((await sdk.triggerBatch(batch)).status, 200);
    assert.deepEqual(await done(), ['a:1', 'b:2', 'c:3', 'c:3']);
  });

  it('gives a duplicate on a history channel no offset of its own', async () => {
    const ch = channel('chat');
    const k = key();
    await sdk.trigger(ch, 'm', '1', { idempotency_key: k } as Pusher.TriggerParams);
    await sdk.trigger(ch, 'm', '1', { idempotency_key: k } as Pusher.TriggerParams);
    await sdk.trigger(ch, 'm', '2');
    const page = (await (await sdk.get({ path: `/channels/${ch}/history`, params: { since: '0' } })).json()) as { messages: Array<{ offset: number; data: string }> };
    assert.deepEqual(page.messages.map((m) => [m.offset, m.data]), [[1, '1'], [2, '2']]);
  });

  it('delivers a native /broadcast and /send retried with the same Idempotency-Key once, answering duplicate: true', async () => {
    const ch = channel();
    const claim = await api(server, 'POST', '/claim', { token: TOKEN, query: { user: 'u1' } });
    const reader = await connectNative(server, `/ws?app=${APP.key}&claim=${(claim.json.claim as { id: string }).id}`);
    natives.push(reader);
    await subscribeNative(reader, ch);
    const k = key();
    const call = () => api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: 'b1' }, headers: { 'idempotency-key': k } });
    assert.deepEqual((await call()).json, { success: true });
    assert.deepEqual((await call()).json, { success: true, duplicate: true });
    const ks = key();
    const direct = () => api(server, 'POST', '/send', { token: TOKEN, query: { user: 'u1', type: 'text' }, body: 'direct', headers: { 'idempotency-key': ks } });
    assert.deepEqual((await direct()).json, { success: true });
    assert.deepEqual((await direct()).json, { success: true, duplicate: true });
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: 'end' } });
    await reader.until(() => reader.json.some((m) => m.data === 'end'));
    await reader.sync();
    assert.deepEqual(reader.json.filter((m) => m.type === undefined).map((m) => m.data), ['b1', 'direct', 'end']);
  });

  it('refuses a malformed key before publishing anything', async () => {
    const ch = channel();
    await assert.rejects(sdk.trigger(ch, 'e', 'x', { idempotency_key: 'has space' } as Pusher.TriggerParams), (err: { status: number; body: string }) => {
      assert.equal(err.status, 400);
      assert.equal((JSON.parse(err.body) as { error: string }).error, 'idempotency_key must be printable ASCII without spaces');
      return true;
    });
    await assert.rejects(sdk.triggerBatch([{ channel: ch, name: 'e', data: 'x' }, { channel: ch, name: 'e', data: 'x', idempotency_key: 'k'.repeat(257) }] as Pusher.BatchEvent[]), (err: { status: number; body: string }) => {
      assert.equal((JSON.parse(err.body) as { error: string }).error, 'batch[1]: idempotency_key must be at most 256 characters');
      return true;
    });
    const native = await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: 'x' }, headers: { 'idempotency-key': 'é' } });
    assert.deepEqual([native.status, native.json.errorCode], [400, 'INVALID_IDEMPOTENCY_KEY']);
  });
});

describe('idempotency window (idempotencyWindowSeconds)', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({ idempotencyWindowSeconds: 1, apps: [{ ...APP, apiToken: TOKEN }] });
  });
  after(async () => {
    await server.close();
  });

  it('delivers a key again once the window has passed', async () => {
    const call = () => api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'w', data: 'x' }, headers: { 'idempotency-key': 'window-key' } });
    assert.deepEqual((await call()).json, { success: true });
    assert.deepEqual((await call()).json, { success: true, duplicate: true });
    await eventually(async () => (await call()).json.duplicate === undefined, 'the key free after 1 s', 5000, 200);
  });
});
