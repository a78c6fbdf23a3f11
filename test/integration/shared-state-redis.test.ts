import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { createServer, type Switchboard } from '../../src/index.js';
import { REDIS_SERVER, freePort, redisAnswers, redisBinariesMissing, redisNodeConfig, sharedRedisMissing } from '../helpers/cluster.js';
import { RawClient } from '../helpers/clients.js';
import { channelAuth } from '../helpers/raw-pusher.js';
import { eventually } from '../helpers/wait.js';

const TOKEN = 'shared-state-token-0123';
const APP = { id: 'app-id', key: 'app-key', secret: 'app-secret', apiToken: TOKEN, apiRequestsPerSecond: 5 };
const missing = await sharedRedisMissing();
if (missing) console.log(`# skipping shared-state tests on Redis: ${missing}`);

/** Two in-process nodes on the machine's Redis, with a node timeout far longer than any test. */
describe('state shared through Redis', { skip: missing }, () => {
  let a: Switchboard;
  let b: Switchboard;
  before(async () => {
    const config = redisNodeConfig('shared', [APP]);
    a = await createServer(config);
    b = await createServer(config);
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('counts an app’s API rate limit over both nodes, not per node', async () => {
    // Start at the beginning of a second so the whole burst falls in one counting window.
    await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
    const started = Date.now();
    const statuses = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        fetch(`${(i % 2 ? a : b).url}/broadcast`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: 'rate', data: String(i) }),
        }).then((r) => r.status),
      ),
    );
    assert.ok(Date.now() - started < 900, 'the burst fitted in one second');
    assert.equal(statuses.filter((s) => s === 200).length, 5, `statuses: ${statuses.join(',')}`);
    assert.equal(statuses.filter((s) => s === 429).length, 5);
  });

  it('drops a node’s presence members as soon as it leaves cleanly, long before the node timeout', async (t) => {
    const watcher = await RawClient.connect(a);
    const watcherId = await watcher.socketId();
    const member = JSON.stringify({ user_id: 'leaver' });
    const leaverNode = await createServer({ ...a.config, port: 0 });
    t.after(() => leaverNode.close());
    const leaver = await RawClient.connect(leaverNode);
    const leaverId = await leaver.socketId();
    leaver.send({ event: 'pusher:subscribe', data: { channel: 'presence-room', auth: channelAuth(leaverId, 'presence-room', member), channel_data: member } });
    await leaver.event('pusher_internal:subscription_succeeded', 'presence-room');
    await eventually(() => a.hub.presenceUserIds(APP.id, 'presence-room').includes('leaver'), 'node a hears of the member');
    const mine = JSON.stringify({ user_id: 'watcher' });
    watcher.send({ event: 'pusher:subscribe', data: { channel: 'presence-room', auth: channelAuth(watcherId, 'presence-room', mine), channel_data: mine } });
    const joined = await watcher.event('pusher_internal:subscription_succeeded', 'presence-room');
    assert.match(String(joined.data), /leaver/);

    const leftAt = Date.now();
    await leaverNode.close();
    const removed = await watcher.event('pusher_internal:member_removed', 'presence-room');
    assert.deepEqual(JSON.parse(removed.data as string), { user_id: 'leaver' });
    assert.ok(Date.now() - leftAt < 5_000, 'well before nodeTimeoutMs (60 s)');
    watcher.close();
    if (leaver.ws.readyState === WebSocket.OPEN) leaver.close();
  });
});

describe('claims on a Redis that stops answering', { skip: redisBinariesMissing() ?? false }, () => {
  it('answers POST /claim with 500 INTERNAL_ERROR within a bound instead of waiting for Redis', { timeout: 20_000 }, async (t) => {
    const port = await freePort();
    const redis = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    t.after(() => {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
    });
    await eventually(() => redisAnswers(port), 'the throwaway redis-server to answer');
    const server = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', adapter: 'redis', redisUrl: `redis://127.0.0.1:${port}`, apps: [{ ...APP, apiRequestsPerSecond: 0 }] });
    t.after(async () => {
      redis.kill('SIGCONT');
      await server.close();
    });
    const claim = (): Promise<Response> => fetch(`${server.url}/claim?user=42`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    assert.equal((await claim()).status, 200);

    redis.kill('SIGSTOP'); // connected, but every command waits for an answer
    const started = Date.now();
    const res = await claim();
    const took = Date.now() - started;
    assert.equal(res.status, 500);
    assert.equal(((await res.json()) as { errorCode: string }).errorCode, 'INTERNAL_ERROR');
    assert.ok(took < 4_000, `answered after ${took} ms`);
  });
});
