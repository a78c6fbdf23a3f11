import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { Switchboard } from '../../src/index.js';
import type { DeadLetter } from '../../src/webhooks/queue.js';
import { sharedRedisMissing, uniquePrefix } from '../helpers/cluster.js';
import { rawClient, subscribeRaw } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { send } from '../helpers/signed-request.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const TOKEN = 'dead-letter-token-0123456789';

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, 'webhooks', 'dead-letters', ...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/**
 * Events given up after their last retry become dead letters in the shared queue; an operator
 * reads and replays them through the native API or the CLI, and the replayed event keeps its id.
 */
describe('webhook dead letters (webhookQueue: redis)', { skip: await sharedRedisMissing() }, () => {
  const prefix = uniquePrefix('dead');
  let server: Switchboard;
  let hooks: WebhookReceiver;
  before(async () => {
    hooks = await startReceiver({ failTimes: Infinity });
    server = await startServer({
      clusterPrefix: prefix,
      webhookQueue: 'redis',
      webhookRetryForMs: 0, // one attempt, then a dead letter
      webhookLeaveDelayMs: 0,
      webhookQueuePollMs: 100,
      apps: [{ ...APP, apiToken: TOKEN, webhooks: [{ url: hooks.url, events: ['channel_occupied'] }] }],
    });
  });
  after(async () => {
    await server?.close();
    await hooks?.close();
    const redis = new Redis('redis://127.0.0.1:6379');
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  const list = async (token = TOKEN): Promise<{ status: number; json: { deadLetters?: DeadLetter[]; errorCode?: string } }> => {
    const reply = await send(server, 'GET', '/webhooks/dead-letters', undefined, undefined, { Authorization: `Bearer ${token}` });
    return { status: reply.status, json: reply.json as { deadLetters?: DeadLetter[] } };
  };

  it('keeps a refused event as a dead letter, counted, readable with the app token and by the CLI, and replays it with its id', async () => {
    const raw = await rawClient(server);
    await subscribeRaw(raw, 'dl-room');
    await hooks.waitForRequests(1);
    const failedId = hooks.requests[0]?.headers['x-switchboard-event-id'];
    assert.ok(typeof failedId === 'string' && failedId.length > 0);
    let dead: DeadLetter[] = [];
    for (let i = 0; i < 100 && dead.length === 0; i++) {
      dead = (await list()).json.deadLetters ?? [];
      if (dead.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(dead.length, 1);
    assert.deepEqual({ id: dead[0]?.id, event: dead[0]?.event, reason: dead[0]?.reason }, { id: failedId, event: { name: 'channel_occupied', channel: 'dl-room' }, reason: 'status 500' });
    assert.equal(server.hub.counters.snapshot(APP.id).webhook_events_dead_lettered, 1);
    assert.equal((await list('not-the-token-of-any-app')).status, 401);

    const listed = await cli('list', '--url', server.url, '--token', TOKEN);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual((JSON.parse(listed.stdout) as DeadLetter[]).map((d) => d.id), [failedId]);

    hooks.failTimes = 0;
    const replayed = await cli('replay', '--url', server.url, '--token', TOKEN, '--id', failedId);
    assert.equal(replayed.code, 0, replayed.stderr);
    assert.equal(replayed.stdout.trim(), 'replayed 1');
    const delivered = await hooks.waitFor((e) => e.channel === 'dl-room');
    assert.equal(delivered.name, 'channel_occupied');
    assert.equal(hooks.requests.find((r) => r.status === 200)?.headers['x-switchboard-event-id'], failedId);
    assert.deepEqual((await list()).json.deadLetters, []);
    raw.close();
  });

  it('tells on /ready that the durable queue is connected', async () => {
    const reply = await send(server, 'GET', '/ready');
    assert.deepEqual(reply.json, { ready: true, serving: true, cluster: true, webhookQueue: true });
  });

  it('refuses a CLI call without --url or a token as a usage error (exit 2)', async () => {
    const result = await cli('list');
    assert.equal(result.code, 2);
    assert.match(result.stderr, /usage:/);
  });
});
