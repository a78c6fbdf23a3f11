import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../helpers/wait.js';
import { nativeClient } from '../helpers/client-packages.js';
import type { EngineEnv } from '../helpers/cluster.js';
import { CHAT_HISTORY, numbered } from '../helpers/history.js';
import { makeTmpDir, natsEnv, redisEnv, sharedNatsMissing, sharedRedisMissing, startNodes, stopNodes, uniquePrefix, writeConfig, type SwitchboardNode } from '../helpers/cluster.js';
import { api } from '../helpers/native.js';
import { APP } from '../helpers/server.js';

const { SwitchboardClient } = nativeClient;
const TOKEN = 'native-client-cluster-token-0123';

const ENGINES: ReadonlyArray<{ name: string; env: EngineEnv; missing: string | undefined }> = [
  { name: 'Redis', env: redisEnv('redis://127.0.0.1:6379'), missing: await sharedRedisMissing() },
  { name: 'NATS', env: natsEnv('nats://127.0.0.1:4222'), missing: await sharedNatsMissing() },
];

/**
 * The native client library across a two-node cluster (child processes, on the machine's Redis
 * or NATS): its node is killed (SIGKILL) mid-stream, and the client moves to the other node and
 * resumes there from the history the engine keeps.
 */
for (const engine of ENGINES) describe(`native client library on two nodes (${engine.name}): failover and resume`, { skip: engine.missing }, () => {
  let nodes: SwitchboardNode[] = [];

  before(async () => {
    const configFile = writeConfig(makeTmpDir('native-client'), {
      apps: [{ ...APP, apiToken: TOKEN, history: CHAT_HISTORY }],
    });
    nodes = await startNodes(2, { engine: engine.env, prefix: uniquePrefix('native-client'), configFile });
  });
  after(() => stopNodes(nodes));

  it('a client on node A, A killed: it reconnects to node B and gets exactly the messages published meanwhile, in order, once', async (t) => {
    const [a, b] = nodes;
    const ch = 'chat-failover';
    const got: unknown[] = [];
    const recoveries: Array<{ recovered: boolean; resumed: boolean }> = [];
    // The first URL first, the next one on each new attempt.
    const client = new SwitchboardClient({ url: [`ws://127.0.0.1:${a.port}/ws`, `ws://127.0.0.1:${b.port}/ws`], minDelayMs: 50, maxDelayMs: 400 });
    t.after(() => client.close());
    client.subscribe(ch, { onMessage: (m) => got.push(m.data), onRecovery: (r) => recoveries.push(r) });
    await eventually(() => recoveries.length === 1, 'subscribed on node A', 10_000);

    const broadcast = async (from: number, to: number) => {
      for (let i = from; i <= to; i += 1) assert.equal((await api(b.server, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, data: { i } } })).status, 200);
    };
    await broadcast(1, 3); // published on B, delivered through Redis to the client on A
    await eventually(() => got.length === 3, `the first three (got ${JSON.stringify(got)})`, 10_000);

    await a.kill();
    await broadcast(4, 8);
    await eventually(() => got.length >= 8, `the missed messages on node B (got ${JSON.stringify(got)})`, 15_000);
    await broadcast(9, 10);
    await eventually(() => got.length >= 10, 'live on node B');
    assert.deepEqual(got, numbered(1, 10));
    // One resubscribe, on node B, and it recovered: the history lives in the engine, not on the node.
    assert.deepEqual(recoveries.map((r) => [r.recovered, r.resumed]), [[false, false], [true, true]]);
  });
});
