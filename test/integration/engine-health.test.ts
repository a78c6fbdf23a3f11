import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CountingSubscriber, killEverything, makeTmpDir, natsBinaryMissing, natsEnv, redisBinariesMissing, redisEnv, startNatsServer, startNode, startRedisServer, uniquePrefix, writeConfig, type EngineEnv, type ThrowawayServer } from '../helpers/cluster.js';
import { APP } from '../helpers/server.js';
import { signedRequest } from '../helpers/signed-request.js';
import { eventually } from '../helpers/wait.js';

/**
 * An engine that stays connected but stops answering (SIGSTOP): the node notices within
 * engineTimeoutMs, says so on /ready, keeps serving its own clients, and trusts the engine again
 * once it answers. A node started against such an engine gives up after startTimeoutMs, exit 2.
 */

const ENGINE_TIMEOUT_MS = 1_000;

const engines = [
  { name: 'redis', missing: redisBinariesMissing, start: () => startRedisServer(), env: (s: ThrowawayServer): EngineEnv => redisEnv(s.url) },
  { name: 'nats', missing: natsBinaryMissing, start: () => startNatsServer(), env: (s: ThrowawayServer): EngineEnv => natsEnv(s.url) },
];

for (const engine of engines) {
  describe(`engine health on ${engine.name}: connected but not answering`, { skip: engine.missing(), timeout: 60_000 }, () => {
    after(() => killEverything());
    // killEverything() removes the temporary directories: a config file per case.
    const configFile = (): string => writeConfig(makeTmpDir('health'), { apps: [APP] });

    it('marks the bus unhealthy within seconds (/ready 503), serves local clients meanwhile, and recovers', async () => {
      const server = await engine.start();
      const env = { ...engine.env(server), SWITCHBOARD_ENGINE_TIMEOUT_MS: String(ENGINE_TIMEOUT_MS) };
      const node = await startNode('frozen-engine', { engine: env, prefix: uniquePrefix('health'), configFile: configFile() });
      const client = await CountingSubscriber.connect(node.port, APP.key);
      await client.subscribe('local-news');
      server.pause();
      const frozenAt = Date.now();
      try {
        await eventually(async () => (await node.ready()).status === 503, '/ready 503 while the engine is frozen', 8_000);
        const noticedAfter = Date.now() - frozenAt;
        assert.ok(noticedAfter < ENGINE_TIMEOUT_MS + 3_000, `noticed after ${noticedAfter} ms`);
        assert.deepEqual((await node.ready()).json, { ready: false, serving: true, cluster: false });
        // A publish is answered as during an outage: accepted, delivered to this node's own clients.
        const reply = await signedRequest(node.server, { method: 'POST', path: '/events', body: { name: 'news', channel: 'local-news', data: 'while-frozen' } });
        assert.equal(reply.status, 200, reply.text);
        await client.until(() => client.of('local-news', 'news').includes('while-frozen'), 3_000);
      } finally {
        server.resume();
      }
      await eventually(async () => (await node.ready()).status === 200, '/ready 200 once the engine answers', 10_000);
      assert.equal(node.child.exitCode, null);
      client.close();
      await node.stop();
    });

    it('gives up at start-up against an engine that does not answer: exit 2 and a clear error', async () => {
      const server = await engine.start();
      server.pause();
      try {
        const env = { ...engine.env(server), SWITCHBOARD_START_TIMEOUT_MS: '1500' };
        const started = Date.now();
        await assert.rejects(startNode('never-ready', { engine: env, prefix: uniquePrefix('health'), configFile: configFile() }), (err: Error) => {
          assert.match(err.message, /exited \(2\) before listening/);
          assert.match(err.message, /did not answer within 1500 ms \(startTimeoutMs\)/);
          return true;
        });
        assert.ok(Date.now() - started < 8_000, `gave up after ${Date.now() - started} ms`);
      } finally {
        server.resume();
      }
    });
  });
}
