import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BoundedRedis, StoreBackloggedError } from '../../src/cluster/bounded-redis.js';
import { killEverything, redisBinariesMissing, startRedisServer } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';

/**
 * The store client (claims, rate limits, history; the Redis webhook queue) against a private
 * redis-server that the test freezes (SIGSTOP) and kills: what the client holds stays bounded,
 * callers are answered at once, and it recovers by itself.
 */
const MAX = 50;

describe('the Redis store client stays bounded while Redis is frozen or down', { skip: redisBinariesMissing(), timeout: 60_000 }, () => {
  after(() => killEverything());

  it('frozen: at most MAX commands wait, the rest are refused at once; down: nothing is queued; back: commands work again', async () => {
    const server = await startRedisServer();
    const client = new BoundedRedis(server.url, { maxRetriesPerRequest: 1, commandTimeout: 1_000, lazyConnect: true }, MAX);
    client.on('error', () => undefined);
    try {
      await client.connect();
      assert.equal(await client.set('k', 'v'), 'OK');

      server.pause();
      const outcomes = await Promise.allSettled(Array.from({ length: 4 * MAX }, (_, i) => client.set(`k${i}`, 'v')));
      assert.ok(client.commandQueue.length <= MAX, `at most ${MAX} held, not ${client.commandQueue.length}`);
      const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof StoreBackloggedError).length;
      assert.equal(refused, 3 * MAX, 'everything past the bound refused at once');
      assert.ok(outcomes.every((o) => o.status === 'rejected'), 'the held ones time out (commandTimeout)');
      server.resume();
      await eventually(async () => (await client.get('k')) === 'v', 'answers again after the freeze', 10_000);

      await server.stop();
      await eventually(() => client.status !== 'ready', 'the client sees Redis gone');
      // Refused by the client at once (no offline queue), not after the command timeout.
      await assert.rejects(client.set('down', 'v'), (err: Error) => !/timed out/i.test(err.message));
      assert.equal(client.commandQueue.length, 0, 'nothing waits for a reconnect');
      await server.start();
      await eventually(async () => (await client.set('back', 'v').catch(() => undefined)) === 'OK', 'works again without a restart', 10_000);
    } finally {
      client.disconnect();
      await server.stop();
    }
  });
});
