import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed } from '../helpers/clients.js';
import { startServer } from '../helpers/server.js';

describe('public channels through pusher-js and the pusher SDK', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('delivers a REST-triggered event to a subscribed pusher-js client', async (t) => {
    const client = pusherClient(server);
    t.after(() => client.disconnect());
    await connected(client);
    await subscribed(client, 'orders');
    const received = new Promise((resolve) => client.channel('orders').bind('created', resolve));
    await serverSdk(server).trigger('orders', 'created', { id: 7 });
    assert.deepEqual(await received, { id: 7 });
  });

  it('gives a socket id in the <int>.<int> form the server SDKs accept', async (t) => {
    const client = pusherClient(server);
    t.after(() => client.disconnect());
    assert.match(await connected(client), /^\d+\.\d+$/);
  });
});
