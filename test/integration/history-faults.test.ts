import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import type Pusher from 'pusher';
import { serverSdk } from '../helpers/clients.js';
import {
  killEverything,
  makeTmpDir,
  natsBinaryMissing,
  natsEnv,
  redisBinariesMissing,
  redisEnv,
  startNatsServer,
  startNodes,
  startRedisServer,
  stopNodes,
  uniquePrefix,
  writeConfig,
  type SwitchboardNode,
  type ThrowawayServer,
} from '../helpers/cluster.js';
import { api, closeAll, connectNative, type NativeClient } from '../helpers/native.js';
import { eventually } from '../helpers/wait.js';
import { APP } from '../helpers/server.js';

const TOKEN = 'history-faults-token-0123456789';
const HISTORY = { channels: 'chat-*', size: 20, ttlSeconds: 120 };

interface Delivery {
  readonly data: string;
  readonly position: { epoch: string; offset: number };
}

/** Messages with a position a native (envelope) client got on `channel`, in order. */
const deliveries = (c: NativeClient, channel: string): Delivery[] =>
  c.json.filter((m) => m.channel === channel && m.type === undefined && 'position' in m) as unknown as Delivery[];

/**
 * A native (envelope) client of `node`, kept in `clients` for closing, subscribed to `channel`
 * (from `since` when given); resolves with the client and the subscribe's ack.
 */
async function subscriber(clients: NativeClient[], node: SwitchboardNode, channel: string, since?: unknown): Promise<{ client: NativeClient; ack: Record<string, unknown> }> {
  const client = await connectNative(node.server, `/ws?app=${APP.key}`);
  clients.push(client);
  client.send(since === undefined ? { action: 'subscribe', channel } : { action: 'subscribe', channel, since });
  return { client, ack: await client.ack('subscribed', channel) };
}

/**
 * Two Switchboard processes on an engine of their own: history written through one node is read
 * and resumed through the other, and survives the other's SIGKILL.
 */
for (const engine of ['redis', 'nats'] as const) {
  const skip = engine === 'redis' ? redisBinariesMissing() : natsBinaryMissing();
  describe(`history and idempotency across two nodes (${engine}, real processes)`, { skip, timeout: 120_000 }, () => {
    let server: ThrowawayServer;
    let a: SwitchboardNode;
    let b: SwitchboardNode;
    let sdkA: Pusher;
    let sdkB: Pusher;
    const clients: NativeClient[] = [];
    let n = 0;
    const channel = () => `chat-${engine}-${(n += 1)}`;

    before(async () => {
      server = engine === 'redis' ? await startRedisServer() : await startNatsServer();
      const configFile = writeConfig(makeTmpDir('history-faults'), { apps: [{ ...APP, apiToken: TOKEN, nativeFormat: 'envelope', history: [HISTORY] }] });
      [a, b] = await startNodes(2, { engine: engine === 'redis' ? redisEnv(server.url) : natsEnv(server.url), prefix: uniquePrefix('hf'), configFile });
      sdkA = serverSdk(a.server);
      sdkB = serverSdk(b.server);
    });
    after(async () => {
      await closeAll(clients);
      await stopNodes([a, b].filter(Boolean));
      await server?.stop();
      await killEverything();
    });

    it('reads through node B, over REST, the history written through node A', async () => {
      const ch = channel();
      for (let i = 1; i <= 3; i += 1) await sdkA.trigger(ch, 'm', `a${i}`);
      const page = await eventually(async () => {
        const p = (await (await sdkB.get({ path: `/channels/${ch}/history`, params: { since: '0' } })).json()) as { messages: Array<{ offset: number; data: string }> };
        return p.messages.length === 3 && p;
      }, 'three messages readable through B');
      assert.deepEqual(page.messages.map((m) => [m.offset, m.data]), [[1, 'a1'], [2, 'a2'], [3, 'a3']]);
    });

    it('delivers once a publish retried through the other node with the same key', async () => {
      const ch = channel();
      const { client: reader } = await subscriber(clients, b, ch);
      const key = `retry-${engine}-${process.pid}`;
      await sdkA.trigger(ch, 'order', 'once', { idempotency_key: key } as Pusher.TriggerParams);
      const retry = await api(b.server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, event: 'order', data: 'once' }, headers: { 'idempotency-key': key } });
      assert.deepEqual(retry.json, { success: true, duplicate: true });
      await sdkB.trigger(ch, 'end', 'end');
      await reader.until(() => deliveries(reader, ch).some((m) => m.data === 'end'), 5000);
      assert.deepEqual(deliveries(reader, ch).map((m) => m.data), ['once', 'end']);
    });

    // Last: it kills node A.
    it('a client of a SIGKILLed node resumes on the other: exactly the missed messages, in order, once, then live', async () => {
      const ch = channel();
      const { client: onA } = await subscriber(clients, a, ch);
      for (let i = 1; i <= 3; i += 1) await sdkB.trigger(ch, 'm', `m${i}`);
      await onA.until(() => deliveries(onA, ch).length === 3, 5000);
      const seen = deliveries(onA, ch).at(-1)!.position;
      assert.equal(seen.offset, 3);

      await a.kill();
      await onA.closed;
      for (let i = 4; i <= 8; i += 1) await sdkB.trigger(ch, 'm', `m${i}`);

      const { client: onB, ack } = await subscriber(clients, b, ch, seen);
      assert.equal(ack.recovered, true);
      await sdkB.trigger(ch, 'm', 'm9');
      await onB.until(() => deliveries(onB, ch).some((m) => m.data === 'm9'), 5000);
      await onB.sync();
      assert.deepEqual(
        deliveries(onB, ch).map((m) => [m.data, m.position.offset, m.position.epoch]),
        [4, 5, 6, 7, 8, 9].map((i) => [`m${i}`, i, seen.epoch]),
      );
    });
  });
}

describe('history when Redis restarts without persistence (real processes)', { skip: redisBinariesMissing(), timeout: 120_000 }, () => {
  let redis: ThrowawayServer;
  let nodes: SwitchboardNode[] = [];
  const clients: NativeClient[] = [];

  before(async () => {
    redis = await startRedisServer();
    const configFile = writeConfig(makeTmpDir('history-restart'), { apps: [{ ...APP, apiToken: TOKEN, nativeFormat: 'envelope', history: [HISTORY] }] });
    nodes = await startNodes(2, { engine: redisEnv(redis.url), prefix: uniquePrefix('hr'), configFile });
  });
  after(async () => {
    await closeAll(clients);
    await stopNodes(nodes);
    await redis?.stop();
    await killEverything();
  });

  it('changes the epoch: a resume from before the restart is told recovered: false, never a silent gap', async () => {
    const [a, b] = nodes;
    const sdk = serverSdk(b.server);
    const ch = 'chat-restart';
    const { client: live } = await subscriber(clients, a, ch);
    await sdk.trigger(ch, 'm', 'before1');
    await sdk.trigger(ch, 'm', 'before2');
    await live.until(() => deliveries(live, ch).length === 2, 5000);
    const seen = deliveries(live, ch).at(-1)!.position;

    await redis.stop();
    await redis.start();
    await eventually(async () => (await a.ready()).status === 200 && (await b.ready()).status === 200, 'both nodes ready after the restart', 30_000, 200);
    // Publishes during the reconnect may be delivered without a position; the first stored one starts the new epoch.
    const after = await eventually(async () => {
      await sdk.trigger(ch, 'm', 'after');
      return deliveries(live, ch).find((m) => m.data === 'after');
    }, 'a positioned message after the restart', 15_000, 300);
    assert.notEqual(after.position.epoch, seen.epoch);
    assert.equal(after.position.offset, 1);

    const { client: back, ack } = await subscriber(clients, b, ch, seen);
    assert.equal(ack.recovered, false);
    assert.equal((ack.position as { epoch: string }).epoch, after.position.epoch);
    await back.sync();
    assert.deepEqual(deliveries(back, ch), []);
  });

  it('answers a keyed publish 503 while Redis is down (not delivered), and delivers its retry once when Redis is back', async () => {
    const [a] = nodes;
    const ch = 'outage-channel';
    const { client: reader } = await subscriber(clients, a, ch);
    const publish = (key?: string) => api(a.server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: key ?? 'unkeyed' }, headers: key ? { 'idempotency-key': key } : {} });
    await redis.stop();
    try {
      const refused = await publish('during-outage');
      assert.equal(refused.status, 503);
      assert.equal(refused.json.errorCode, 'IDEMPOTENCY_UNAVAILABLE');
      assert.equal((await publish()).status, 200); // without a key: answered as any publish in an outage
    } finally {
      await redis.start();
    }
    await eventually(async () => (await a.ready()).status === 200, 'node ready after the restart', 30_000, 200);
    await eventually(async () => (await publish('during-outage')).status === 200, 'the retry accepted', 15_000, 300);
    assert.deepEqual((await publish('during-outage')).json, { success: true, duplicate: true });
    await publish('end');
    await reader.until(() => reader.json.some((m) => m.data === 'end'), 5000);
    assert.deepEqual(reader.json.filter((m) => m.type === undefined).map((m) => m.data), ['unkeyed', 'during-outage', 'end']);
  });

  it('while Redis is frozen, delivers a history channel\'s messages live (without positions) after one store timeout, not one per message', async () => {
    const [a] = nodes;
    const ch = 'chat-frozen';
    const { client: reader } = await subscriber(clients, a, ch);
    redis.pause();
    try {
      for (let i = 1; i <= 30; i += 1) assert.equal((await api(a.server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: `f${i}` } })).status, 200);
      // Each store command gives up after 2 s: one append after another would need 60 s for these 30.
      await reader.until(() => reader.json.filter((m) => m.channel === ch && m.type === undefined).length === 30, 20_000);
    } finally {
      redis.resume();
    }
    const got = reader.json.filter((m) => m.channel === ch && m.type === undefined);
    assert.deepEqual(got.map((m) => m.data), Array.from({ length: 30 }, (_, i) => `f${i + 1}`));
    assert.ok(got.every((m) => m.position === undefined), 'delivered without positions');
  });

  it('keeps a flooded channel bounded in Redis: at most `size` entries, expiring with ttlSeconds', async () => {
    const sdk = serverSdk(nodes[0].server);
    const ch = 'chat-flood';
    const batches = 40; // 400 events, 20 times the channel's size
    for (let i = 0; i < batches; i += 1) {
      await sdk.triggerBatch(Array.from({ length: 10 }, (_, j) => ({ channel: ch, name: 'f', data: String(i * 10 + j + 1) })));
    }
    const page = await eventually(async () => {
      const p = (await (await sdk.get({ path: `/channels/${ch}/history`, params: { limit: '1000' } })).json()) as { top: number; oldest: number; messages: Array<{ offset: number }> };
      return p.top === 400 && p;
    }, 'all 400 appended');
    assert.equal(page.messages.length, HISTORY.size);
    assert.equal(page.oldest, 381);
    const direct = new Redis(redis.url);
    try {
      const keys = await direct.keys('*chat-flood*');
      const stream = keys.find((k) => k.endsWith(':s'));
      assert.ok(stream, `stream key among ${keys.join(', ')}`);
      assert.equal(await direct.xlen(stream), HISTORY.size);
      for (const k of keys) {
        const ttl = await direct.pttl(k);
        assert.ok(ttl > 0 && ttl <= HISTORY.ttlSeconds * 1000, `${k} expires within ttlSeconds (pttl ${ttl})`);
      }
    } finally {
      direct.disconnect();
    }
  });
});
