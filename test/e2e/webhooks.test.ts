import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed, type ClientOptions, type PusherJs, type RawClient } from '../helpers/clients.js';
import { rawClient, subscribeRaw, subscribeSigned, type AppCredentials } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { startReceiver, type WebhookEvent, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const QUIET = { id: 'quiet-id', key: 'quiet-key', secret: 'quiet-secret' } as const;
const OTHER = { id: 'other-id', key: 'other-key', secret: 'other-secret' } as const;

/** The app's counters from GET /apps/{id}/stats, signed by the SDK. */
async function counters(server: Switchboard, app: AppCredentials = APP): Promise<Record<string, number>> {
  const res = await serverSdk(server, app).get({ path: '/stats' });
  assert.equal(res.status, 200);
  return ((await res.json()) as { counters: Record<string, number> }).counters;
}

/** Polls the stats endpoint until `cond` holds for the counters; returns them. */
async function countersWhen(server: Switchboard, cond: (c: Record<string, number>) => boolean, timeoutMs = 3000): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await counters(server);
    if (cond(c)) return c;
    if (Date.now() > deadline) throw new Error(`counters never matched; last ${JSON.stringify(c)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const is = (name: string, channel: string) => (e: WebhookEvent) => e.name === name && e.channel === channel;

/** pusher-js clients of one suite's server, disconnected together when the suite ends. */
function clientPool(server: () => Switchboard): { make: (opts?: ClientOptions) => PusherJs; disconnectAll: () => void } {
  const all: PusherJs[] = [];
  return {
    make(opts = {}) {
      const c = pusherClient(server(), opts);
      all.push(c);
      return c;
    },
    disconnectAll: () => all.forEach((c) => c.disconnect()),
  };
}

/**
 * Subscribes `c` to a fresh channel and waits for its channel_occupied: the target's queue is
 * FIFO and the hub raises events synchronously, so everything `c`'s socket caused before (and
 * whatever any socket caused before an acknowledged step) has been delivered by then.
 */
let barriers = 0;
async function barrier(c: PusherJs, receiver: WebhookReceiver): Promise<void> {
  const channel = `barrier-${++barriers}`;
  c.subscribe(channel);
  await receiver.waitFor(is('channel_occupied', channel));
}

describe('webhooks: events, signature, apps', () => {
  let server: Switchboard;
  let hooks: WebhookReceiver;
  let otherHooks: WebhookReceiver;
  const pool = clientPool(() => server);
  const client = pool.make;

  before(async () => {
    hooks = await startReceiver({ path: '/hooks/app' });
    otherHooks = await startReceiver();
    server = await startServer({
      webhookBatchMs: 20,
      // Leaves are held back (see "leaves held back" below); short here, so these tests stay quick.
      webhookLeaveDelayMs: 200,
      shutdownSpreadMs: 0,
      apps: [
        { ...APP, enableClientMessages: true, webhooks: [{ url: hooks.url }] },
        QUIET,
        { ...OTHER, webhooks: [{ url: otherHooks.url }] },
      ],
    });
  });
  after(async () => {
    pool.disconnectAll();
    await server.close();
    await hooks.close();
    await otherHooks.close();
  });

  it('POSTs JSON to the target URL with X-Pusher-Key and an HMAC-SHA256 signature of the raw body', async () => {
    const c = client();
    await subscribed(c, 'signed-check');
    await hooks.waitFor(is('channel_occupied', 'signed-check'));
    const request = hooks.requests.find((r) => r.body?.events.some(is('channel_occupied', 'signed-check')));
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, '/hooks/app');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.equal(request.headers['x-pusher-key'], APP.key);
    assert.equal(request.headers['x-pusher-signature'], createHmac('sha256', APP.secret).update(request.rawBody).digest('hex'));
    const webhook = serverSdk(server).webhook({ headers: request.headers, rawBody: request.rawBody });
    assert.equal(webhook.isValid(), true);
    assert.ok(webhook.getEvents().some((e) => e.name === 'channel_occupied' && e.channel === 'signed-check'));
    // The SDK check is not vacuous: another secret does not validate.
    assert.equal(serverSdk(server, { ...APP, secret: 'wrong-secret' }).webhook({ headers: request.headers, rawBody: request.rawBody }).isValid(), false);
  });

  it('raises channel_occupied for the first subscriber only and channel_vacated when the last one unsubscribes', async () => {
    const a = client();
    const b = client();
    await subscribed(a, 'room-unsub');
    await hooks.waitFor(is('channel_occupied', 'room-unsub'));
    await subscribed(b, 'room-unsub');
    a.unsubscribe('room-unsub');
    await barrier(a, hooks);
    assert.deepEqual(hooks.eventsOf('room-unsub'), [{ name: 'channel_occupied', channel: 'room-unsub' }]);
    b.unsubscribe('room-unsub');
    await hooks.waitFor(is('channel_vacated', 'room-unsub'));
    assert.deepEqual(hooks.eventsOf('room-unsub'), [
      { name: 'channel_occupied', channel: 'room-unsub' },
      { name: 'channel_vacated', channel: 'room-unsub' },
    ]);
  });

  it('raises channel_vacated when the last subscriber disconnects', async () => {
    const a = client();
    await subscribed(a, 'room-disconnect');
    await hooks.waitFor(is('channel_occupied', 'room-disconnect'));
    a.disconnect();
    await hooks.waitFor(is('channel_vacated', 'room-disconnect'));
    assert.deepEqual(hooks.eventsOf('room-disconnect'), [
      { name: 'channel_occupied', channel: 'room-disconnect' },
      { name: 'channel_vacated', channel: 'room-disconnect' },
    ]);
  });

  it("raises member_added on a user's first tab and member_removed on its last, with user_id as a string", async () => {
    const channel = 'presence-tabs';
    // An integer id, as PHP backends send it, is reported as the string Pusher uses.
    const user = { user_id: 42 as unknown as string };
    const tab1 = client({ presence: user });
    const tab2 = client({ presence: user });
    const members = (): WebhookEvent[] => hooks.eventsOf(channel).filter((e) => e.name.startsWith('member_'));
    await subscribed(tab1, channel);
    await hooks.waitFor(is('member_added', channel));
    await subscribed(tab2, channel);
    tab1.unsubscribe(channel);
    await barrier(tab1, hooks);
    assert.deepEqual(members(), [{ name: 'member_added', channel, user_id: '42' }]);
    tab2.disconnect();
    await hooks.waitFor(is('member_removed', channel));
    assert.deepEqual(members(), [
      { name: 'member_added', channel, user_id: '42' },
      { name: 'member_removed', channel, user_id: '42' },
    ]);
  });

  it('reports a client event with its channel, name, data as JSON text and the socket id of the sender', async () => {
    const sender = client();
    const socketId = await connected(sender);
    await subscribed(sender, 'private-chat');
    assert.equal(sender.channel('private-chat').trigger('client-typing', { who: 'ann', n: 1 }), true);
    const event = await hooks.waitFor(is('client_event', 'private-chat'));
    assert.deepEqual(event, { name: 'client_event', channel: 'private-chat', event: 'client-typing', data: '{"who":"ann","n":1}', socket_id: socketId });
  });

  it('adds the user_id to client events on presence channels', async () => {
    const sender = client({ presence: { user_id: 'ann-7', user_info: { name: 'Ann' } } });
    const socketId = await connected(sender);
    await subscribed(sender, 'presence-chat');
    assert.equal(sender.channel('presence-chat').trigger('client-wave', 'hi'), true);
    const event = await hooks.waitFor(is('client_event', 'presence-chat'));
    assert.deepEqual(event, { name: 'client_event', channel: 'presence-chat', event: 'client-wave', data: '"hi"', socket_id: socketId, user_id: 'ann-7' });
  });

  it('raises cache_miss when a client subscribes to an empty cache channel', async () => {
    const c = client();
    await subscribed(c, 'cache-empty');
    await hooks.waitFor(is('cache_miss', 'cache-empty'));
    assert.deepEqual(
      hooks.eventsOf('cache-empty').filter((e) => e.name === 'cache_miss'),
      [{ name: 'cache_miss', channel: 'cache-empty' }],
    );
  });

  it('raises no cache_miss when the cache channel holds an event', async () => {
    await serverSdk(server).trigger('cache-full', 'price', { eur: 1 });
    const c = client();
    await subscribed(c, 'cache-full');
    await barrier(c, hooks);
    assert.deepEqual(hooks.eventsOf('cache-full'), [{ name: 'channel_occupied', channel: 'cache-full' }]);
  });

  it("sends nothing for an app without webhooks, and each app's webhooks carry its own key and signature", async () => {
    const quiet = client({ key: QUIET.key });
    await subscribed(quiet, 'from-quiet');
    const other = client({ key: OTHER.key });
    await subscribed(other, 'from-other');
    await otherHooks.waitFor(is('channel_occupied', 'from-other'));
    await barrier(client(), hooks);

    const everything = [...hooks.requests, ...otherHooks.requests].flatMap((r) => r.body?.events ?? []);
    assert.deepEqual(
      everything.filter((e) => e.channel === 'from-quiet'),
      [],
    );
    assert.deepEqual(hooks.eventsOf('from-other'), []);
    for (const r of otherHooks.requests) {
      assert.equal(r.headers['x-pusher-key'], OTHER.key);
      assert.equal(serverSdk(server, OTHER).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true);
      assert.equal(serverSdk(server).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), false);
    }
    for (const r of hooks.requests) assert.equal(r.headers['x-pusher-key'], APP.key);
  });
});

describe('webhooks: one event per request unless the target batches', () => {
  it('sends a presence join (channel_occupied + member_added) as two requests of one event each, in order', async (t) => {
    const hooks = await startReceiver();
    const server = await startServer({ webhookBatchMs: 300, shutdownSpreadMs: 0, apps: [{ ...APP, webhooks: [{ url: hooks.url }] }] });
    const c = pusherClient(server, { presence: { user_id: 'solo' } });
    t.after(async () => {
      c.disconnect();
      await server.close();
      await hooks.close();
    });
    const joinedAt = Date.now();
    await subscribed(c, 'presence-single');
    await hooks.waitForRequests(2);
    assert.deepEqual(
      hooks.requests.map((r) => r.body?.events),
      [[{ name: 'channel_occupied', channel: 'presence-single' }], [{ name: 'member_added', channel: 'presence-single', user_id: 'solo' }]],
    );
    // Not held for webhookBatchMs: it applies to batching targets only.
    for (const r of hooks.requests) assert.ok(r.receivedAt - joinedAt < 250, `arrived ${r.receivedAt - joinedAt} ms after the join`);
  });

  it('keeps several requests under way (at most 8), each channel in order, when the target is slow', async (t) => {
    const hooks = await startReceiver({ hold: true });
    const server = await startServer({ shutdownSpreadMs: 0, webhookLeaveDelayMs: 0, apps: [{ ...APP, webhooks: [{ url: hooks.url }] }] });
    const raw = await rawClient(server);
    t.after(async () => {
      raw.close();
      await server.close();
      await hooks.close();
    });
    const channels = Array.from({ length: 20 }, (_, i) => `lane-${i}`);
    for (const channel of channels) {
      await subscribeRaw(raw, channel);
      raw.send({ event: 'pusher:unsubscribe', data: { channel } });
    }
    await hooks.until(() => hooks.requests.length > 1, 'more than one request under way');
    await new Promise((resolve) => setTimeout(resolve, 200)); // room for any more to start
    const underWay = hooks.requests.length;
    assert.ok(underWay > 1 && underWay <= 8, `${underWay} requests under way`);
    hooks.release();
    await hooks.until(() => hooks.delivered().length === 40, 'all 40 events');
    for (const channel of channels) assert.deepEqual(hooks.eventsOf(channel).map((e) => e.name), ['channel_occupied', 'channel_vacated'], channel);
    assert.ok(hooks.requests.every((r) => r.body?.events.length === 1));
  });
});

describe('webhooks: batching (a target with batch: true)', () => {
  const BATCH_MS = 300;
  let server: Switchboard;
  let hooks: WebhookReceiver;
  let raw: RawClient;
  before(async () => {
    hooks = await startReceiver();
    // Leaves at once, so the vacancy falls into the same window as the rest.
    server = await startServer({ webhookBatchMs: BATCH_MS, webhookLeaveDelayMs: 0, shutdownSpreadMs: 0, apps: [{ ...APP, enableClientMessages: true, webhooks: [{ url: hooks.url, batch: true }] }] });
    raw = await rawClient(server);
  });
  after(async () => {
    raw.close();
    await server.close();
    await hooks.close();
  });

  it('sends the events raised within the window in one POST, in order, stamped with the first event time', async () => {
    const startedAt = Date.now();
    await subscribeSigned(raw, 'private-batch');
    raw.send({ event: 'client-a', channel: 'private-batch', data: { n: 1 } });
    raw.send({ event: 'client-b', channel: 'private-batch', data: { n: 2 } });
    raw.send({ event: 'pusher:unsubscribe', data: { channel: 'private-batch' } });
    await hooks.waitForRequests(1);
    const socketId = await raw.socketId();
    const [request] = hooks.requests;
    assert.ok(request?.body);
    assert.deepEqual(request.body.events, [
      { name: 'channel_occupied', channel: 'private-batch' },
      { name: 'client_event', channel: 'private-batch', event: 'client-a', data: '{"n":1}', socket_id: socketId },
      { name: 'client_event', channel: 'private-batch', event: 'client-b', data: '{"n":2}', socket_id: socketId },
      { name: 'channel_vacated', channel: 'private-batch' },
    ]);
    const { time_ms: timeMs } = request.body;
    assert.equal(typeof timeMs, 'number');
    assert.ok(timeMs >= startedAt && timeMs <= request.receivedAt, `time_ms ${timeMs} not within [${startedAt}, ${request.receivedAt}]`);
    // Stamped when the first event happened, not when the window closed.
    assert.ok(request.receivedAt - timeMs >= BATCH_MS - 20, `time_ms ${timeMs} is only ${request.receivedAt - timeMs} ms before the POST`);
    assert.equal(hooks.requests.length, 1);
  });
});

describe('webhooks: leaves held back (channel_vacated, member_removed)', () => {
  const DELAY_MS = 400;
  let server: Switchboard;
  let hooks: WebhookReceiver;
  const pool = clientPool(() => server);
  const client = pool.make;
  before(async () => {
    hooks = await startReceiver();
    server = await startServer({ webhookBatchMs: 10, webhookLeaveDelayMs: DELAY_MS, shutdownSpreadMs: 0, apps: [{ ...APP, webhooks: [{ url: hooks.url }] }] });
  });
  after(async () => {
    pool.disconnectAll();
    await server.close();
    await hooks.close();
  });

  /** Waits past the delay, then for a barrier: anything held back is out by then. */
  async function afterDelay(c: PusherJs): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS + 100));
    await barrier(c, hooks);
  }

  it('sends channel_vacated only once the delay has passed', async () => {
    const a = client();
    await subscribed(a, 'held-vacate');
    await hooks.waitFor(is('channel_occupied', 'held-vacate'));
    const leftAt = Date.now();
    a.unsubscribe('held-vacate');
    await hooks.waitFor(is('channel_vacated', 'held-vacate'));
    assert.ok(Date.now() - leftAt >= DELAY_MS - 20, `vacated after ${Date.now() - leftAt} ms`);
  });

  it('reports neither the vacancy nor the new occupancy when the channel is back within the delay', async () => {
    const a = client();
    await subscribed(a, 'held-reload');
    await hooks.waitFor(is('channel_occupied', 'held-reload'));
    a.unsubscribe('held-reload');
    await subscribed(a, 'held-reload');
    await afterDelay(a);
    assert.deepEqual(hooks.eventsOf('held-reload'), [{ name: 'channel_occupied', channel: 'held-reload' }]);
  });

  it('reports neither member_removed nor member_added when the user is back within the delay (a page reload)', async () => {
    const channel = 'presence-held';
    const before = client({ presence: { user_id: 'u-reload' } });
    await subscribed(before, channel);
    await hooks.waitFor(is('member_added', channel));
    before.disconnect();
    const after = client({ presence: { user_id: 'u-reload' } });
    await subscribed(after, channel);
    await afterDelay(after);
    assert.deepEqual(
      hooks.eventsOf(channel).filter((e) => e.name.startsWith('member_')),
      [{ name: 'member_added', channel, user_id: 'u-reload' }],
    );
    // Another user leaving for good is still reported, after the delay.
    const other = client({ presence: { user_id: 'u-gone' } });
    await subscribed(other, channel);
    other.disconnect();
    await hooks.waitFor((e) => e.name === 'member_removed' && e.user_id === 'u-gone');
  });

  it('sends held leaves on shutdown without waiting out the delay', async (t) => {
    const shutdownHooks = await startReceiver();
    t.after(() => shutdownHooks.close());
    const s = await startServer({ webhookBatchMs: 10, webhookLeaveDelayMs: 60_000, shutdownSpreadMs: 0, apps: [{ ...APP, webhooks: [{ url: shutdownHooks.url }] }] });
    const raw = await rawClient(s);
    await subscribeRaw(raw, 'held-shutdown');
    raw.send({ event: 'pusher:unsubscribe', data: { channel: 'held-shutdown' } });
    await shutdownHooks.waitFor(is('channel_occupied', 'held-shutdown'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(shutdownHooks.eventsOf('held-shutdown').length, 1);
    await s.close();
    assert.deepEqual(shutdownHooks.eventsOf('held-shutdown'), [
      { name: 'channel_occupied', channel: 'held-shutdown' },
      { name: 'channel_vacated', channel: 'held-shutdown' },
    ]);
    raw.close();
  });
});

describe('webhooks: per-target filters and headers', () => {
  let server: Switchboard;
  let membersOnly: WebhookReceiver;
  let prefixed: WebhookReceiver;
  let occupiedPrefixed: WebhookReceiver;
  let suffixed: WebhookReceiver;
  let withHeaders: WebhookReceiver;
  let c: PusherJs;
  before(async () => {
    membersOnly = await startReceiver();
    prefixed = await startReceiver();
    occupiedPrefixed = await startReceiver();
    suffixed = await startReceiver();
    withHeaders = await startReceiver();
    server = await startServer({
      webhookBatchMs: 20,
      shutdownSpreadMs: 0,
      apps: [
        {
          ...APP,
          webhooks: [
            { url: membersOnly.url, events: ['member_added', 'member_removed'] },
            { url: prefixed.url, channelPrefix: 'presence-only-' },
            { url: occupiedPrefixed.url, events: ['channel_occupied'], channelPrefix: 'presence-only-' },
            { url: suffixed.url, channelSuffix: '-z' },
            { url: withHeaders.url, headers: { 'X-Custom-Token': 'abc123', Authorization: 'Bearer t0k' } },
          ],
        },
      ],
    });
    c = pusherClient(server, { presence: { user_id: 'u1' } });
    // The same steps for every test below: the filters see one stream of events.
    await subscribed(c, 'presence-only-a');
    await subscribed(c, 'presence-b');
    await subscribed(c, 'public-c');
    await subscribed(c, 'presence-only-z');
  });
  after(async () => {
    c.disconnect();
    await server.close();
    await Promise.all([membersOnly, prefixed, occupiedPrefixed, suffixed, withHeaders].map((r) => r.close()));
  });

  it('sends a target only the event names in its events list', async () => {
    await membersOnly.waitFor(is('member_added', 'presence-only-z'));
    assert.deepEqual(membersOnly.delivered(), [
      { name: 'member_added', channel: 'presence-only-a', user_id: 'u1' },
      { name: 'member_added', channel: 'presence-b', user_id: 'u1' },
      { name: 'member_added', channel: 'presence-only-z', user_id: 'u1' },
    ]);
  });

  it('sends a target only the events of channels starting with its channelPrefix', async () => {
    await prefixed.waitFor(is('member_added', 'presence-only-z'));
    assert.deepEqual(prefixed.delivered(), [
      { name: 'channel_occupied', channel: 'presence-only-a' },
      { name: 'member_added', channel: 'presence-only-a', user_id: 'u1' },
      { name: 'channel_occupied', channel: 'presence-only-z' },
      { name: 'member_added', channel: 'presence-only-z', user_id: 'u1' },
    ]);
  });

  it('sends a target only the events of channels ending with its channelSuffix', async () => {
    await suffixed.waitFor(is('member_added', 'presence-only-z'));
    assert.deepEqual(suffixed.delivered(), [
      { name: 'channel_occupied', channel: 'presence-only-z' },
      { name: 'member_added', channel: 'presence-only-z', user_id: 'u1' },
    ]);
  });

  it('applies the events list and the channelPrefix together', async () => {
    await occupiedPrefixed.waitFor(is('channel_occupied', 'presence-only-z'));
    assert.deepEqual(occupiedPrefixed.delivered(), [
      { name: 'channel_occupied', channel: 'presence-only-a' },
      { name: 'channel_occupied', channel: 'presence-only-z' },
    ]);
  });

  it("sends a target's custom headers along with the Pusher ones", async () => {
    // Every event: 4 occupied + 3 member_added (channels are sent side by side, so in any order).
    await withHeaders.until(() => withHeaders.delivered().length === 7, '7 events');
    for (const r of withHeaders.requests) {
      assert.equal(r.headers['x-custom-token'], 'abc123');
      assert.equal(r.headers.authorization, 'Bearer t0k');
      assert.equal(r.headers['x-pusher-key'], APP.key);
      assert.equal(serverSdk(server).webhook({ headers: r.headers, rawBody: r.rawBody }).isValid(), true);
    }
  });
});

describe('webhooks: failures, drops and shutdown', () => {
  it('retries a refused batch after 1 s and 2 s, then counts 2 failures and 1 sent', async (t) => {
    const hooks = await startReceiver({ failTimes: 2 });
    const server = await startServer({ webhookBatchMs: 10, shutdownSpreadMs: 0, webhookRetryForMs: 4_000, apps: [{ ...APP, webhooks: [{ url: hooks.url }] }] });
    const raw = await rawClient(server);
    t.after(async () => {
      raw.close();
      await server.close();
      await hooks.close();
    });
    await subscribeRaw(raw, 'retry-me');
    await hooks.waitForRequests(3, 5_000);
    const [first, second, third] = hooks.requests;
    assert.ok(first && second && third);
    assert.deepEqual(
      hooks.requests.map((r) => r.status),
      [500, 500, 200],
    );
    // The same batch each time, arriving on the third try.
    assert.equal(second.rawBody, first.rawBody);
    assert.equal(third.rawBody, first.rawBody);
    assert.deepEqual(third.body?.events, [{ name: 'channel_occupied', channel: 'retry-me' }]);
    assert.ok(second.receivedAt - first.receivedAt >= 950, `first retry after ${second.receivedAt - first.receivedAt} ms`);
    assert.ok(third.receivedAt - second.receivedAt >= 1_950, `second retry after ${third.receivedAt - second.receivedAt} ms`);
    const c = await countersWhen(server, (x) => x.webhooks_sent === 1);
    assert.equal(c.webhook_failures, 2);
    assert.equal(c.webhook_events_dropped, 0);
  });

  it('drops a batch the target keeps refusing past webhookRetryForMs, counts it, and moves on', async (t) => {
    const hooks = await startReceiver({ failTimes: Infinity });
    const server = await startServer({ webhookBatchMs: 10, shutdownSpreadMs: 0, webhookRetryForMs: 1_500, apps: [{ ...APP, webhooks: [{ url: hooks.url }] }] });
    const raw = await rawClient(server);
    t.after(async () => {
      raw.close();
      await server.close();
      await hooks.close();
    });
    await subscribeRaw(raw, 'doomed');
    const c = await countersWhen(server, (x) => x.webhook_events_dropped === 1);
    // Tried at 0 s and 1 s; the next try (2 s later) would be past the 1.5 s budget.
    assert.equal(hooks.requests.length, 2);
    assert.equal(c.webhook_failures, 2);
    assert.equal(c.webhooks_sent, 0);

    hooks.failTimes = 0;
    await subscribeRaw(raw, 'after-drop');
    await hooks.waitFor(is('channel_occupied', 'after-drop'));
    assert.deepEqual(hooks.delivered(), [{ name: 'channel_occupied', channel: 'after-drop' }]);
  });

  // Event 0 in flight and unanswered, 1-5 queued behind it with room for 3: 1 and 2 are dropped.
  // A batching target then gets 3-5 in one request; one without batching, one request each.
  for (const { batch, requests } of [
    { batch: true, requests: [['{"n":0}'], ['{"n":3}', '{"n":4}', '{"n":5}']] },
    { batch: false, requests: [['{"n":0}'], ['{"n":3}'], ['{"n":4}'], ['{"n":5}']] },
  ]) {
    it(`keeps at most webhookMaxQueue events waiting behind a stuck target (batch: ${batch}), dropping the oldest`, async (t) => {
      const hooks = await startReceiver({ hold: true });
      const server = await startServer({
        webhookBatchMs: 10,
        webhookMaxQueue: 3,
        shutdownSpreadMs: 0,
        apps: [{ ...APP, enableClientMessages: true, webhooks: [{ url: hooks.url, events: ['client_event'], batch }] }],
      });
      const raw = await rawClient(server);
      t.after(async () => {
        raw.close();
        await server.close();
        await hooks.close();
      });
      await subscribeSigned(raw, 'private-queue');
      const send = (n: number): void => raw.send({ event: 'client-n', channel: 'private-queue', data: { n } });
      send(0);
      await hooks.waitForRequests(1); // in flight, unanswered: the channel's events wait behind it
      for (let n = 1; n <= 5; n++) send(n);
      const dropped = await countersWhen(server, (x) => x.webhook_events_dropped >= 2);
      assert.equal(dropped.webhook_events_dropped, 2);
      hooks.release();
      await hooks.waitForRequests(requests.length);
      assert.deepEqual(
        hooks.requests.map((r) => r.body?.events.map((e) => e.data)),
        requests,
      );
      const c = await countersWhen(server, (x) => x.webhooks_sent === requests.length);
      assert.equal(c.webhook_events_dropped, 2);
    });
  }

  it('delivers the events raised just before server.close() before close resolves', async (t) => {
    const hooks = await startReceiver();
    t.after(() => hooks.close());
    // A window far longer than the test: only the shutdown flush can send the batch.
    const server = await startServer({ webhookBatchMs: 60_000, shutdownSpreadMs: 0, apps: [{ ...APP, webhooks: [{ url: hooks.url, batch: true }] }] });
    const raw = await rawClient(server);
    await subscribeRaw(raw, 'last-words');
    assert.equal(hooks.requests.length, 0);
    await server.close();
    assert.deepEqual(hooks.delivered(), [
      { name: 'channel_occupied', channel: 'last-words' },
      { name: 'channel_vacated', channel: 'last-words' },
    ]);
  });

  it('gives queued events one attempt on shutdown, without waiting for retries', async (t) => {
    const hooks = await startReceiver({ failTimes: Infinity });
    t.after(() => hooks.close());
    const server = await startServer({ webhookBatchMs: 60_000, shutdownSpreadMs: 0, apps: [{ ...APP, webhooks: [{ url: hooks.url, batch: true }] }] });
    const raw = await rawClient(server);
    await subscribeRaw(raw, 'unheard');
    const closing = Date.now();
    await server.close();
    assert.ok(Date.now() - closing < 900, `close took ${Date.now() - closing} ms: it waited for a retry`);
    assert.equal(hooks.requests.length, 1);
    assert.deepEqual(hooks.requests[0]?.body?.events.map((e) => e.name), ['channel_occupied', 'channel_vacated']);
  });

  it('cuts a retry backoff short on shutdown: the waiting batch gets its last attempt at once', async (t) => {
    const hooks = await startReceiver({ failTimes: Infinity });
    t.after(() => hooks.close());
    // Fails at 0 s and 1 s, then would wait 2 s: longer than what is left of the shutdown deadline.
    const server = await startServer({
      webhookBatchMs: 10,
      webhookRetryForMs: 60_000,
      shutdownSpreadMs: 0,
      shutdownTimeoutMs: 1_000,
      apps: [{ ...APP, webhooks: [{ url: hooks.url }] }],
    });
    const raw = await rawClient(server);
    await subscribeRaw(raw, 'backing-off');
    await hooks.waitForRequests(2);
    const closing = Date.now();
    await server.close();
    assert.ok(Date.now() - closing < 900, `close took ${Date.now() - closing} ms: it sat out the backoff`);
    // The waiting batch once more, then the vacated one the shutdown raised: one attempt each, both dropped.
    assert.deepEqual(
      hooks.requests.map((r) => r.body?.events.map((e) => e.name)),
      [['channel_occupied'], ['channel_occupied'], ['channel_occupied'], ['channel_vacated']],
    );
    const c = server.hub.counters.snapshot(APP.id);
    assert.equal(c.webhook_failures, 4);
    assert.equal(c.webhook_events_dropped, 2);
  });
});
