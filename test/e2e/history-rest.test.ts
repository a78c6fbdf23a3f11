import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { serverSdk } from '../helpers/clients.js';
import { api } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';

const TOKEN = 'history-api-token-0123456789';

interface Page {
  channel: string;
  epoch: string;
  top: number;
  oldest: number;
  recovered?: boolean;
  more: boolean;
  messages: Array<{ offset: number; event: string; data: string; at: number }>;
}

/** Reads of a channel's history over the Pusher REST API (the `pusher` SDK's get()) and the native API (a token). */
describe('history over REST (Pusher signature and native token, local engine)', () => {
  let server: Switchboard;
  let sdk: Pusher;
  let n = 0;
  const channel = () => `chat-rest-${(n += 1)}`;

  before(async () => {
    server = await startServer({ apps: [{ ...APP, apiToken: TOKEN, history: [{ channels: 'chat-*', size: 10, ttlSeconds: 60 }] }] });
    sdk = serverSdk(server);
  });
  after(async () => {
    await server.close();
  });

  const get = async (ch: string, params: Record<string, string> = {}): Promise<Page> => {
    const res = await sdk.get({ path: `/channels/${ch}/history`, params });
    assert.equal(res.status, 200);
    return (await res.json()) as Page;
  };
  const sdkFailure = async (ch: string, params: Record<string, string>): Promise<{ status: number; error: string }> => {
    try {
      await sdk.get({ path: `/channels/${ch}/history`, params });
    } catch (err) {
      const e = err as { status: number; body: string };
      return { status: e.status, error: (JSON.parse(e.body) as { error: string }).error };
    }
    throw new Error('the read succeeded');
  };
  const publish = async (ch: string, from: number, to: number) => {
    for (let i = from; i <= to; i += 1) await sdk.trigger(ch, 'msg', `m${i}`);
  };

  it('pages forward from `since` with `more`, oldest first, until the newest message', async () => {
    const ch = channel();
    await publish(ch, 1, 7);
    const first = await get(ch, { since: '2', limit: '3' });
    assert.deepEqual(first.messages.map((m) => [m.offset, m.event, m.data]), [[3, 'msg', 'm3'], [4, 'msg', 'm4'], [5, 'msg', 'm5']]);
    assert.equal(first.more, true);
    assert.equal(first.top, 7);
    assert.equal(first.oldest, 1);
    assert.ok(first.messages.every((m) => typeof m.at === 'number'));
    const next = await get(ch, { since: String(first.messages.at(-1)?.offset), limit: '3', epoch: first.epoch });
    assert.deepEqual(next.messages.map((m) => m.offset), [6, 7]);
    assert.equal(next.more, false);
    assert.equal(next.recovered, true);
  });

  it('without `since`, answers the newest `limit` messages', async () => {
    const ch = channel();
    await publish(ch, 1, 5);
    const page = await get(ch, { limit: '2' });
    assert.deepEqual(page.messages.map((m) => m.data), ['m4', 'm5']);
    assert.equal(page.recovered, undefined);
  });

  it('says recovered: false, with the current epoch and no messages, for a position of another epoch or one dropped', async () => {
    const ch = channel();
    await publish(ch, 1, 14); // size 10: offsets 5..14 kept
    const other = await get(ch, { since: '3', epoch: 'not-this-one' });
    assert.equal(other.recovered, false);
    assert.deepEqual(other.messages, []);
    assert.notEqual(other.epoch, 'not-this-one');
    const dropped = await get(ch, { since: '2', epoch: other.epoch });
    assert.equal(dropped.recovered, false);
    assert.deepEqual(dropped.messages, []);
    assert.equal(dropped.oldest, 5);
    const edge = await get(ch, { since: '4', epoch: other.epoch });
    assert.equal(edge.recovered, true);
    assert.equal(edge.messages[0].offset, 5);
  });

  it('refuses a channel without history, a bad since or limit, and epoch without since, saying why', async () => {
    assert.deepEqual(await sdkFailure('plain-channel', {}), { status: 404, error: 'channel plain-channel keeps no history (no history rule of the app matches it)' });
    assert.deepEqual(await sdkFailure(channel(), { since: '-1' }), { status: 400, error: 'since must be an integer ≥ 0' });
    assert.deepEqual(await sdkFailure(channel(), { since: 'abc' }), { status: 400, error: 'since must be an integer ≥ 0' });
    assert.deepEqual(await sdkFailure(channel(), { limit: '0' }), { status: 400, error: 'limit must be an integer ≥ 1' });
    assert.deepEqual(await sdkFailure(channel(), { limit: '1001' }), { status: 400, error: 'limit must be at most 1000' });
    assert.deepEqual(await sdkFailure(channel(), { epoch: 'e' }), { status: 400, error: 'epoch needs since (the offset seen in that epoch)' });
  });

  it('answers the native GET /history with a token, in the native shape', async () => {
    const ch = channel();
    await publish(ch, 1, 3);
    const page = await api(server, 'GET', '/history', { token: TOKEN, query: { channel: ch, since: '1' } });
    assert.equal(page.status, 200);
    assert.equal(page.json.success, true);
    assert.deepEqual((page.json.messages as Page['messages']).map((m) => m.offset), [2, 3]);
    const none = await api(server, 'GET', '/history', { token: TOKEN, query: { channel: 'plain' } });
    assert.deepEqual([none.status, none.json.errorCode], [404, 'NO_HISTORY']);
    const bad = await api(server, 'GET', '/history', { token: TOKEN, query: { channel: ch, limit: 'x' } });
    assert.deepEqual([bad.status, bad.json.errorCode], [400, 'INVALID_PARAMETER']);
    const missing = await api(server, 'GET', '/history', { token: TOKEN });
    assert.deepEqual([missing.status, missing.json.errorCode], [400, 'MISSING_CHANNEL']);
    const anonymous = await api(server, 'GET', '/history', { query: { channel: ch } });
    assert.deepEqual([anonymous.status, anonymous.json.errorCode], [401, 'INVALID_AUTHORIZATION']);
  });
});
