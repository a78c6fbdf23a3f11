import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { CountingSubscriber, freePort, killEverything, makeTmpDir, natsBinaryMissing, natsEnv, redisBinariesMissing, redisEnv, startNatsServer, startNodes, startRedisServer, stopNodes, uniquePrefix, writeConfig, type EngineEnv, type SwitchboardNode, type ThrowawayServer } from '../helpers/cluster.js';
import { APP } from '../helpers/server.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { eventually } from '../helpers/wait.js';

/**
 * At least once with a durable queue, with real processes: two nodes on a private engine, a
 * webhook receiver that is down while events are raised on one node, then that node SIGKILLed
 * (or the engine killed and restarted) before the receiver comes back. Every event arrives;
 * an event that arrives twice carries the same X-Switchboard-Event-Id both times.
 */

const CHANNELS = 6;
const LEASE_MS = 1_500;

interface Engine {
  readonly name: string;
  readonly missing: () => string | undefined;
  readonly start: () => Promise<ThrowawayServer>;
  readonly env: (server: ThrowawayServer) => EngineEnv;
  /** Events waiting in the app's queue (not yet delivered). */
  readonly queued: (server: ThrowawayServer, prefix: string) => Promise<number>;
}

const engines: Engine[] = [
  {
    name: 'redis',
    missing: redisBinariesMissing,
    start: () => startRedisServer({ persistent: true }),
    env: (server) => ({ ...redisEnv(server.url), SWITCHBOARD_WEBHOOK_QUEUE: 'redis' }),
    queued: async (server, prefix) => {
      const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
      try {
        return Number((await redis.hget(`${prefix}:wh:{${Buffer.from(APP.id).toString('base64url')}}:size`, 'n')) ?? 0);
      } finally {
        redis.disconnect();
      }
    },
  },
  {
    name: 'nats',
    missing: natsBinaryMissing,
    start: () => startNatsServer(),
    env: (server) => ({ ...natsEnv(server.url), SWITCHBOARD_WEBHOOK_QUEUE: 'nats' }),
    queued: async (server, prefix) => {
      const nc = await connect({ servers: server.url });
      try {
        const jsm = await jetstreamManager(nc);
        let total = 0;
        for await (const info of jsm.streams.list()) if (info.config.name.startsWith(`${prefix}_wh_`)) total += info.state.messages;
        return total;
      } finally {
        await nc.close();
      }
    },
  },
];

/** Raises 2 × CHANNELS events on `node` (channel_occupied on subscribe, channel_vacated on close). */
async function raiseEvents(node: SwitchboardNode): Promise<void> {
  const client = await CountingSubscriber.connect(node.port, APP.key);
  for (let i = 0; i < CHANNELS; i++) await client.subscribe(`durable-${i}`);
  client.close();
}

/** Whether every event has arrived (duplicates aside). */
function allArrived(receiver: WebhookReceiver): boolean {
  return new Set(receiver.delivered().map((e) => `${e.channel}|${e.name}`)).size >= 2 * CHANNELS;
}

/** Every expected event arrived; each id stands for one event only (a duplicate repeats its id). */
function checkDelivery(receiver: WebhookReceiver): void {
  const byId = new Map<string, string>();
  for (const request of receiver.requests.filter((r) => r.status < 300)) {
    const ids = String(request.headers['x-switchboard-event-id'] ?? '').split(',');
    const events = request.body?.events ?? [];
    assert.equal(ids.length, events.length, 'one id per event');
    events.forEach((event, i) => {
      const key = `${event.channel}|${event.name}`;
      const id = ids[i];
      const seen = byId.get(id);
      assert.ok(seen === undefined || seen === key, `id ${id} used for ${seen} and ${key}`);
      byId.set(id, key);
    });
  }
  const expected = Array.from({ length: CHANNELS }, (_, i) => [`durable-${i}|channel_occupied`, `durable-${i}|channel_vacated`]).flat().sort();
  assert.deepEqual([...byId.values()].sort(), expected, 'each event exactly once by id');
}

for (const engine of engines) {
  describe(`durable webhooks on ${engine.name}: nothing lost when a node or the engine dies`, { skip: engine.missing(), timeout: 60_000 }, () => {
    after(() => killEverything());

    async function setup(): Promise<{ server: ThrowawayServer; nodes: SwitchboardNode[]; prefix: string; hookPort: number }> {
      const server = await engine.start();
      const hookPort = await freePort();
      const prefix = uniquePrefix(`whd-${engine.name}`);
      const configFile = writeConfig(makeTmpDir('whd'), { apps: [{ ...APP, webhooks: [{ url: `http://127.0.0.1:${hookPort}/hooks` }] }] });
      const env = {
        ...engine.env(server),
        SWITCHBOARD_WEBHOOK_LEAVE_DELAY_MS: '0',
        SWITCHBOARD_WEBHOOK_QUEUE_LEASE_MS: String(LEASE_MS),
        SWITCHBOARD_WEBHOOK_QUEUE_POLL_MS: '250',
        SWITCHBOARD_WEBHOOK_TIMEOUT_MS: '1000',
      };
      const nodes = await startNodes(2, { engine: env, prefix, configFile });
      return { server, nodes, prefix, hookPort };
    }

    it('delivers what a SIGKILLed node had queued, from the other node, once the receiver is back', async () => {
      const { server, nodes, prefix, hookPort } = await setup();
      const [producer, survivor] = nodes as [SwitchboardNode, SwitchboardNode];
      await raiseEvents(producer);
      await eventually(async () => (await engine.queued(server, prefix)) === 2 * CHANNELS, `${2 * CHANNELS} events queued`, 10_000);
      await producer.kill();
      const receiver = await startReceiver({ port: hookPort, path: '/hooks' });
      try {
        await receiver.until(() => allArrived(receiver), 'every event', 20_000);
        checkDelivery(receiver);
        await eventually(async () => (await engine.queued(server, prefix)) === 0, 'an empty queue', 5_000);
      } finally {
        await receiver.close();
        await stopNodes([survivor]);
      }
    });

    it('delivers what waited in the engine across its restart', async () => {
      const { server, nodes, prefix, hookPort } = await setup();
      await raiseEvents(nodes[0]);
      await eventually(async () => (await engine.queued(server, prefix)) === 2 * CHANNELS, `${2 * CHANNELS} events queued`, 10_000);
      await server.stop();
      await server.start();
      const receiver = await startReceiver({ port: hookPort, path: '/hooks' });
      try {
        await receiver.until(() => allArrived(receiver), 'every event', 25_000);
        checkDelivery(receiver);
        for (const node of nodes) assert.equal(node.child.exitCode, null, `${node.name} exited:\n${node.tail()}`);
      } finally {
        await receiver.close();
        await stopNodes(nodes);
      }
    });
  });
}
