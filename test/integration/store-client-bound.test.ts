import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { boundedNats } from '../../src/cluster/bounded-nats.js';
import { BoundedRedis, StoreBackloggedError } from '../../src/cluster/bounded-redis.js';
import { NatsIdempotencyStore } from '../../src/cluster/nats-idempotency.js';
import { killEverything, natsBinaryMissing, redisBinariesMissing, startNatsServer, startRedisServer } from '../helpers/cluster.js';
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

/**
 * The same for the NATS stores (claims, history, idempotency, the NATS webhook queue): each goes
 * through one bounded connection, here under the idempotency store on a private nats-server.
 */
describe('the NATS store connection stays bounded while NATS is frozen or down', { skip: natsBinaryMissing(), timeout: 60_000 }, () => {
  after(() => killEverything());

  it('frozen: at most MAX requests wait, the rest are refused at once; down: refused at once, nothing held; back: works again', async () => {
    const server = await startNatsServer();
    const nc = boundedNats(await connect({ servers: server.url, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 }), MAX);
    try {
      const store = await NatsIdempotencyStore.open(nc, `bound-${process.pid}`, 60_000);
      assert.equal(await store.claim('app', 'first'), true);

      server.pause();
      const settled = Promise.allSettled(Array.from({ length: 4 * MAX }, (_, i) => store.claim('app', `frozen-${i}`)));
      await eventually(() => nc.pendingRequests === MAX, `${MAX} held, not ${nc.pendingRequests}`);
      const outcomes = await settled;
      const refused = outcomes.filter((o) => o.status === 'rejected' && o.reason instanceof StoreBackloggedError).length;
      assert.equal(refused, 3 * MAX, 'everything past the bound refused at once');
      assert.ok(outcomes.every((o) => o.status === 'rejected'), 'the held ones time out');
      assert.equal(nc.pendingRequests, 0);
      server.resume();
      await eventually(async () => (await store.claim('app', 'first').catch(() => undefined)) === false, 'answers again after the freeze', 10_000);

      await server.stop();
      await eventually(() => store.claim('app', 'probe').then(() => false, (err: unknown) => err instanceof StoreBackloggedError), 'refused while NATS is down', 10_000);
      // Refused by the guard at once, so nothing waits in the client's buffer for a reconnect.
      const down = await Promise.allSettled(Array.from({ length: 4 * MAX }, (_, i) => store.claim('app', `down-${i}`)));
      assert.ok(down.every((o) => o.status === 'rejected' && o.reason instanceof StoreBackloggedError), 'every request refused while down');
      assert.equal(nc.pendingRequests, 0, 'nothing waits for a reconnect');
      await server.start();
      await eventually(async () => (await store.claim('app', 'back').catch(() => undefined)) === true, 'works again without a restart', 15_000);
      assert.equal(await store.claim('app', 'down-0'), true, 'a refused request was never sent after the reconnect');
    } finally {
      await nc.close();
      await server.stop();
    }
  });
});
