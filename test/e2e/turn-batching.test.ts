import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { RawClient, serverSdk } from '../helpers/clients.js';
import { subscribeRaw } from '../helpers/raw-pusher.js';
import { startServer } from '../helpers/server.js';

/**
 * Frames queued for many sockets within one event-loop turn leave as one write per socket, and
 * sockets that got the same frames share one joined buffer. One batch_events request is one
 * turn: each client must still get exactly its own channels' events, in publish order.
 */
describe('frames batched per turn', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('sockets with different subscriptions get their own frames of a turn, in order', async () => {
    const both = await RawClient.connect(server);
    const onlyA = await RawClient.connect(server);
    const alsoOnlyA = await RawClient.connect(server);
    const onlyB = await RawClient.connect(server);
    for (const [client, channels] of [
      [both, ['turn-a', 'turn-b']],
      [onlyA, ['turn-a']],
      [alsoOnlyA, ['turn-a']],
      [onlyB, ['turn-b']],
    ] as const) {
      for (const channel of channels) assert.equal((await subscribeRaw(client, channel)).event, 'pusher_internal:subscription_succeeded');
    }
    // onlyB gets as many frames as onlyA, so only the frames themselves tell their writes apart.
    const events = ['a1', 'b1', 'a2', 'b2', 'a3', 'b3'].map((id) => ({ channel: `turn-${id[0]}`, name: 'step', data: id }));
    await serverSdk(server).triggerBatch(events);

    const received = async (client: RawClient, count: number): Promise<string[]> => {
      await client.next(() => client.messages.filter((m) => m.event === 'step').length >= count);
      return client.messages.filter((m) => m.event === 'step').map((m) => `${m.channel}:${String(m.data)}`);
    };
    assert.deepEqual(await received(both, 6), ['turn-a:a1', 'turn-b:b1', 'turn-a:a2', 'turn-b:b2', 'turn-a:a3', 'turn-b:b3']);
    assert.deepEqual(await received(onlyA, 3), ['turn-a:a1', 'turn-a:a2', 'turn-a:a3']);
    assert.deepEqual(await received(alsoOnlyA, 3), ['turn-a:a1', 'turn-a:a2', 'turn-a:a3']);
    assert.deepEqual(await received(onlyB, 3), ['turn-b:b1', 'turn-b:b2', 'turn-b:b3']);
    // Nothing beyond its own events arrives late either.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(onlyB.messages.filter((m) => m.event === 'step').length, 3);
    for (const c of [both, onlyA, alsoOnlyA, onlyB]) c.close();
  });
});
