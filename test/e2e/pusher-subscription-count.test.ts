import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs, type RawClient } from '../helpers/clients.js';
import { flush, rawClient, subscribeRaw, subscribeSigned, type AppCredentials } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

const NO_COUNT = { id: 'nocount-id', key: 'nocount-key', secret: 'nocount-secret' };
const COUNT_EVENT = 'pusher_internal:subscription_count';

/** Records a pusher-js channel's pusher:subscription_count payloads; `nth(n)` waits for the n-th. */
function countsOf(client: PusherJs, channel: string): { all: unknown[]; nth(n: number): Promise<unknown> } {
  const all: unknown[] = [];
  const waiters: Array<() => void> = [];
  client.channel(channel).bind('pusher:subscription_count', (data: unknown) => {
    all.push(data);
    for (const w of waiters.splice(0)) w();
  });
  return {
    all,
    async nth(n: number): Promise<unknown> {
      const deadline = Date.now() + 3000;
      while (all.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${all.length} subscription_count events: ${JSON.stringify(all)}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, deadline - Date.now());
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return all[n - 1];
    },
  };
}

describe('subscription counts (pusher:subscription_count)', () => {
  let server: Switchboard;
  let sdk: Pusher;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true, enableSubscriptionCount: true }, NO_COUNT] });
    sdk = serverSdk(server);
  });
  after(() => server.close());

  const pusherJsClients: PusherJs[] = [];
  const rawClients: RawClient[] = [];
  after(() => {
    pusherJsClients.forEach((c) => c.disconnect());
    rawClients.forEach((c) => c.close());
  });
  const js = async (): Promise<PusherJs> => {
    const c = pusherClient(server);
    pusherJsClients.push(c);
    await connected(c);
    return c;
  };
  const raw = async (app: AppCredentials = APP): Promise<RawClient> => {
    const c = await rawClient(server, app.key);
    rawClients.push(c);
    return c;
  };

  it('pusher-js gets the count as others subscribe, unsubscribe and disconnect', async () => {
    const channel = 'counted';
    const a = await js();
    const b = await js();
    const c = await js();
    a.subscribe(channel);
    const aCounts = countsOf(a, channel);
    assert.deepEqual(await aCounts.nth(1), { subscription_count: 1 });

    await subscribed(b, channel);
    assert.deepEqual(await aCounts.nth(2), { subscription_count: 2 });
    const cSub = c.subscribe(channel);
    const cCounts = countsOf(c, channel);
    assert.deepEqual(await aCounts.nth(3), { subscription_count: 3 });
    assert.deepEqual(await cCounts.nth(1), { subscription_count: 3 }, 'the joiner learns the count too');
    assert.equal(cSub.subscriptionCount, 3);

    b.unsubscribe(channel);
    assert.deepEqual(await aCounts.nth(4), { subscription_count: 2 });
    c.disconnect();
    assert.deepEqual(await aCounts.nth(5), { subscription_count: 1 });
    assert.equal(a.channel(channel).subscriptionCount, 1);
  });

  it('sends pusher_internal:subscription_count with data as the JSON string {"subscription_count":N}', async () => {
    const a = await raw();
    await subscribeRaw(a, 'counted-wire');
    const frame = await a.event(COUNT_EVENT, 'counted-wire');
    assert.deepEqual(frame, { event: COUNT_EVENT, channel: 'counted-wire', data: '{"subscription_count":1}' });
  });

  it('counts private channels too', async () => {
    const a = await raw();
    const b = await raw();
    await subscribeSigned(a, 'private-counted');
    await subscribeSigned(b, 'private-counted');
    await a.next((m) => m.event === COUNT_EVENT && m.data === '{"subscription_count":2}');
  });

  it('sends nothing when the app has not enabled subscription counts', async () => {
    const channel = 'not-counted';
    const a = await raw(NO_COUNT);
    const b = await raw(NO_COUNT);
    await subscribeRaw(a, channel);
    await subscribeRaw(b, channel);
    b.send({ event: 'pusher:unsubscribe', data: { channel } });
    await until(() => server.hub.channelInfo(NO_COUNT.id, channel).subscriptionCount === 1, 'the server to process the unsubscribe');
    await flush(a, serverSdk(server, NO_COUNT), channel, 'marker');
    assert.equal(a.messages.filter((m) => m.event === COUNT_EVENT).length, 0);
    assert.equal(b.messages.filter((m) => m.event === COUNT_EVENT).length, 0);
  });

  it('sends nothing on presence channels (they have member events instead)', async () => {
    const channel = 'presence-not-counted';
    const a = await raw();
    const b = await raw();
    await subscribeSigned(a, channel, '{"user_id":"a"}');
    await subscribeSigned(b, channel, '{"user_id":"b"}');
    await a.event('pusher_internal:member_added', channel);
    b.close();
    await a.event('pusher_internal:member_removed', channel);
    await flush(a, sdk, channel, 'marker');
    assert.equal(a.messages.filter((m) => m.event === COUNT_EVENT).length, 0);
  });
});
