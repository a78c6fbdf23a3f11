import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, type PusherJs, type RawClient } from '../helpers/clients.js';
import { flush, rawClient, restGet, subscribeRaw, subscribeSigned, type AppCredentials, type Frame } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';

const SHORT_TTL = { id: 'ttl-id', key: 'ttl-key', secret: 'ttl-secret', cacheTtlSeconds: 1 };
const DEFAULT_TTL_SECONDS = 30 * 60;

describe('cache channels', () => {
  let server: Switchboard;
  let sdk: Pusher;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true }, SHORT_TTL] });
    sdk = serverSdk(server);
  });
  after(() => server.close());

  const rawClients: RawClient[] = [];
  const pusherJsClients: PusherJs[] = [];
  after(() => {
    rawClients.forEach((c) => c.close());
    pusherJsClients.forEach((c) => c.disconnect());
  });
  const raw = async (app: AppCredentials = APP): Promise<RawClient> => {
    const c = await rawClient(server, app.key);
    rawClients.push(c);
    return c;
  };

  /**
   * Subscribes a new client (signed when the channel needs it) and returns the frame the
   * server sent right after subscription_succeeded on that channel.
   */
  async function frameAfterSubscribing(channel: string, opts: { app?: AppCredentials; channelData?: string } = {}): Promise<Frame> {
    const app = opts.app ?? APP;
    const client = await raw(app);
    if (channel.startsWith('private-') || channel.startsWith('presence-')) await subscribeSigned(client, channel, opts.channelData, app);
    else assert.equal((await subscribeRaw(client, channel)).event, 'pusher_internal:subscription_succeeded');
    const at = client.messages.findIndex((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === channel);
    await client.next(() => client.messages.length > at + 1);
    return client.messages[at + 1];
  }

  // No `data` at all, as Pusher, soketi, Sockudo and Reverb send it.
  const cacheMiss = (channel: string): Frame => ({ event: 'pusher:cache_miss', channel });

  it('sends pusher:cache_miss right after subscription_succeeded when nothing was published', async () => {
    assert.deepEqual(await frameAfterSubscribing('cache-empty'), cacheMiss('cache-empty'));
  });

  it('sends the last REST-triggered event right after subscription_succeeded', async () => {
    await sdk.trigger('cache-price', 'price', { eur: 1 });
    assert.deepEqual(await frameAfterSubscribing('cache-price'), { event: 'price', channel: 'cache-price', data: '{"eur":1}' });
  });

  it('keeps only the last event', async () => {
    const channel = 'cache-last';
    await sdk.trigger(channel, 'price', { eur: 1 });
    await sdk.trigger(channel, 'price', { eur: 2 });
    const client = await raw();
    await subscribeRaw(client, channel);
    await flush(client, sdk, channel, 'marker');
    assert.deepEqual(
      client.messages.filter((m) => m.channel === channel).map((m) => [m.event, m.data]),
      [
        ['pusher_internal:subscription_succeeded', '{}'],
        ['price', '{"eur":2}'],
        ['marker', '{}'],
      ],
    );
  });

  it('pusher-js: a late subscriber gets the cached event, an early one gets pusher:cache_miss with no data', async () => {
    const early = pusherClient(server);
    const late = pusherClient(server);
    pusherJsClients.push(early, late);
    await Promise.all([connected(early), connected(late)]);
    const missed = new Promise((resolve) => early.subscribe('cache-js').bind('pusher:cache_miss', resolve));
    // Applications test the handler's argument for undefined, as Pusher sends it.
    assert.equal(await missed, undefined);
    await sdk.trigger('cache-js', 'update', { v: 3 });
    const got = new Promise((resolve) => late.subscribe('cache-js').bind('update', resolve));
    assert.deepEqual(await got, { v: 3 });
  });

  it('does not cache client events (private-cache- channel)', async () => {
    const channel = 'private-cache-chat';
    const sender = await raw();
    const receiver = await raw();
    await subscribeSigned(sender, channel);
    await subscribeSigned(receiver, channel);
    sender.send({ event: 'client-typing', channel, data: { who: 'sender' } });
    await receiver.event('client-typing', channel);
    assert.deepEqual(await frameAfterSubscribing(channel), cacheMiss(channel));
  });

  it('private-cache-: misses first, then replays the last event to new subscribers', async () => {
    const channel = 'private-cache-secrets';
    assert.deepEqual(await frameAfterSubscribing(channel), cacheMiss(channel));
    await sdk.trigger(channel, 'rotated', { v: 1 });
    assert.deepEqual(await frameAfterSubscribing(channel), { event: 'rotated', channel, data: '{"v":1}' });
  });

  it('presence-cache-: misses first, then replays the last event to new members', async () => {
    const channel = 'presence-cache-room';
    assert.deepEqual(await frameAfterSubscribing(channel, { channelData: '{"user_id":"u1"}' }), cacheMiss(channel));
    await sdk.trigger(channel, 'topic', { t: 'hello' });
    assert.deepEqual(await frameAfterSubscribing(channel, { channelData: '{"user_id":"u2"}' }), { event: 'topic', channel, data: '{"t":"hello"}' });
  });

  it('does not replay on channels without a cache prefix', async () => {
    await sdk.trigger('plain-channel', 'price', { eur: 1 });
    const client = await raw();
    await subscribeRaw(client, 'plain-channel');
    await flush(client, sdk, 'plain-channel', 'marker');
    assert.deepEqual(
      client.messages.filter((m) => m.channel === 'plain-channel').map((m) => m.event),
      ['pusher_internal:subscription_succeeded', 'marker'],
    );
  });

  it('REST GET channel?info=cache returns {cache:{data,ttl}} once an event is cached', async () => {
    const channel = 'cache-rest';
    assert.deepEqual(await restGet(sdk, `/channels/${channel}`, { info: 'cache' }), { occupied: false });
    await sdk.trigger(channel, 'price', { eur: 5 });
    assert.deepEqual(await restGet(sdk, `/channels/${channel}`, { info: 'cache' }), {
      occupied: false,
      cache: { data: '{"eur":5}', ttl: DEFAULT_TTL_SECONDS },
    });
  });

  it('expires the cached event after the app cacheTtlSeconds', async () => {
    const channel = 'cache-expiring';
    const ttlSdk = serverSdk(server, SHORT_TTL);
    await ttlSdk.trigger(channel, 'price', { eur: 9 });
    const triggeredAt = Date.now();
    assert.deepEqual(await frameAfterSubscribing(channel, { app: SHORT_TTL }), { event: 'price', channel, data: '{"eur":9}' });
    const info = (await restGet(ttlSdk, `/channels/${channel}`, { info: 'cache' })) as { cache?: { ttl: number } };
    assert.equal(info.cache?.ttl, 1);

    // Time itself is under test: wait out the 1 s TTL (measured from after the trigger returned).
    await sleep(triggeredAt + 1050 - Date.now());
    assert.deepEqual(await frameAfterSubscribing(channel, { app: SHORT_TTL }), cacheMiss(channel));
    assert.deepEqual(await restGet(ttlSdk, `/channels/${channel}`, { info: 'cache' }), { occupied: true });
  });
});
