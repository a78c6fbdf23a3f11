import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { RawClient, serverSdk } from '../helpers/clients.js';
import { freePort } from '../helpers/cluster.js';
import { sample, scrape, seriesOf } from '../helpers/metrics.js';
import { closeAll, connectNative, subscribeNative, type NativeClient } from '../helpers/native.js';
import { PROTOCOL_QUERY, rawClient, subscribeRaw } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { eventually } from '../helpers/wait.js';

const HELD = { id: 'held-id', key: 'held-key', secret: 'held-secret' };
const FAILING = { id: 'failing-id', key: 'failing-key', secret: 'failing-secret' };
const LIMITED = { id: 'limited-id', key: 'limited-key', secret: 'limited-secret', apiRequestsPerSecond: 1 };
const WIDE = { id: 'wide-id', key: 'wide-key', secret: 'wide-secret', maxChannelsPerConnection: 100_000, clientMessagesPerSecond: 100_000, maxQueueMessages: 100_000 };

/** `series` in a fresh scrape, 0 when absent. */
async function value(server: Switchboard, series: string): Promise<number> {
  return sample((await scrape(server)).text, series) ?? 0;
}

/** Waits until `series` has grown by `by` from `from` (what the server counts when a socket closes comes a moment later). */
function grows(server: Switchboard, series: string, from: number, by = 1): Promise<number> {
  return eventually(async () => {
    const now = await value(server, series);
    return now >= from + by ? now : false;
  }, `${series} to reach ${from + by}`);
}

describe('each metric moves when its event happens', () => {
  let server: Switchboard;
  let held: WebhookReceiver;
  let failing: WebhookReceiver;
  const natives: NativeClient[] = [];
  const raws: RawClient[] = [];

  before(async () => {
    held = await startReceiver({ hold: true });
    failing = await startReceiver({ failTimes: Infinity });
    server = await startServer({
      metricsPort: await freePort(),
      webhookLeaveDelayMs: 0,
      webhookBatchMs: 0,
      webhookRetryForMs: 1_500, // one retry a second later, then the events are dropped
      apps: [
        { ...APP, enableClientMessages: true },
        { ...HELD, webhooks: [{ url: held.url }] },
        { ...FAILING, webhooks: [{ url: failing.url }] },
        LIMITED,
        WIDE,
      ],
    });
  });
  after(async () => {
    await closeAll(natives);
    for (const c of raws) c.close();
    await server.close();
    await held.close();
    await failing.close();
  });

  it('connections: opened and closed by close code, per app and protocol', async () => {
    const opened = (protocol: string): string => `switchboard_connections_opened_total{app_id="app-id",protocol="${protocol}"}`;
    const closed = (app: string, protocol: string, code: string): string => `switchboard_connections_closed_total{app_id="${app}",protocol="${protocol}",code="${code}"}`;
    const before = await scrape(server);
    const pusher = await rawClient(server);
    const native = await connectNative(server, '/ws');
    const text = (await scrape(server)).text;
    assert.equal(sample(text, opened('pusher')), (sample(before.text, opened('pusher')) ?? 0) + 1);
    assert.equal(sample(text, opened('native')), (sample(before.text, opened('native')) ?? 0) + 1);

    pusher.ws.close(1000);
    native.ws.close(3001); // a code of the client's own choosing: counted as "other"
    await grows(server, closed('app-id', 'pusher', '1000'), sample(before.text, closed('app-id', 'pusher', '1000')) ?? 0);
    await grows(server, closed('app-id', 'native', 'other'), sample(before.text, closed('app-id', 'native', 'other')) ?? 0);

    // Refused by the server (unknown app key): its own code, under no app.
    const refused = await RawClient.connect(server, `/app/no-such-key?${PROTOCOL_QUERY}`);
    raws.push(refused);
    assert.equal(await refused.closed, 4001);
    await grows(server, closed('', 'pusher', '4001'), sample(before.text, closed('', 'pusher', '4001')) ?? 0);
  });

  it('WebSocket messages and bytes, received and sent, per protocol', async () => {
    const series = (name: string, protocol: string): string => `switchboard_ws_${name}_total{app_id="app-id",protocol="${protocol}"}`;
    const pusher = await rawClient(server);
    raws.push(pusher);
    await pusher.socketId();
    const before = (await scrape(server)).text;
    const ping = JSON.stringify({ event: 'pusher:ping', data: {} });
    pusher.send(ping);
    await pusher.event('pusher:pong');
    const after = (await scrape(server)).text;
    const delta = (name: string, protocol: string): number => (sample(after, series(name, protocol)) ?? 0) - (sample(before, series(name, protocol)) ?? 0);
    assert.equal(delta('messages_received', 'pusher'), 1);
    assert.equal(delta('bytes_received', 'pusher'), Buffer.byteLength(ping));
    assert.equal(delta('messages_sent', 'pusher'), 1);
    assert.ok(delta('bytes_sent', 'pusher') > 20);

    const native = await connectNative(server, '/ws?ack=1');
    natives.push(native);
    const nativeBefore = (await scrape(server)).text;
    await subscribeNative(native, 'metrics-room');
    const nativeAfter = (await scrape(server)).text;
    assert.equal((sample(nativeAfter, series('messages_received', 'native')) ?? 0) - (sample(nativeBefore, series('messages_received', 'native')) ?? 0), 1);
    assert.equal((sample(nativeAfter, series('messages_sent', 'native')) ?? 0) - (sample(nativeBefore, series('messages_sent', 'native')) ?? 0), 1);
  });

  it('HTTP API calls by route and status, with their latency; never a path or channel name as a label', async () => {
    const route = 'route="POST /apps/:app/events"';
    const before = (await scrape(server)).text;
    await serverSdk(server).trigger('secret-project-channel', 'e', { n: 1 });
    await fetch(`${server.url}/no-such-path`);
    const after = (await scrape(server)).text;
    const delta = (s: string): number => (sample(after, s) ?? 0) - (sample(before, s) ?? 0);
    assert.equal(delta(`switchboard_http_requests_total{${route},status="200"}`), 1);
    assert.equal(delta(`switchboard_http_request_duration_seconds_count{${route}}`), 1);
    assert.equal(delta(`switchboard_http_request_duration_seconds_bucket{le="+Inf",${route}}`), 1);
    assert.equal(delta('switchboard_http_requests_total{route="other",status="404"}'), 1);
    assert.ok(!after.includes('secret-project-channel') && !after.includes('no-such-path'));
  });

  it('rate-limited API calls, per app', async () => {
    const series = `switchboard_api_requests_rate_limited_total{app_id="${LIMITED.id}"}`;
    const before = await value(server, series);
    const sdk = serverSdk(server, LIMITED);
    const answers = await Promise.all([1, 2, 3, 4].map((i) => sdk.trigger('room', 'e', { i }).then(() => 200, (err: { status?: number }) => err.status)));
    const refused = answers.filter((s) => s === 429).length;
    assert.ok(refused >= 2, answers.join(','));
    assert.equal(await value(server, series), before + refused);
  });

  it('webhooks: queue depth while a target is stuck, then sent; a failing target: failures, retries, dropped events', async () => {
    const depth = `switchboard_webhook_queue_depth{app_id="${HELD.id}"}`;
    const client = await rawClient(server, HELD.key);
    raws.push(client);
    // occupied (sent, held unanswered), vacated and occupied again (waiting behind it)
    await subscribeRaw(client, 'hooked');
    await held.waitForRequests(1);
    client.send({ event: 'pusher:unsubscribe', data: { channel: 'hooked' } });
    await subscribeRaw(client, 'hooked');
    assert.equal(await value(server, depth), 2);
    held.release();
    await grows(server, `switchboard_webhooks_sent_total{app_id="${HELD.id}"}`, 0, 3);
    assert.equal(await value(server, depth), 0);

    const other = await rawClient(server, FAILING.key);
    raws.push(other);
    await subscribeRaw(other, 'hooked');
    await grows(server, `switchboard_webhook_events_dropped_total{app_id="${FAILING.id}"}`, 0);
    assert.equal(await value(server, `switchboard_webhook_failures_total{app_id="${FAILING.id}"}`), 2);
    assert.equal(await value(server, `switchboard_webhook_retries_total{app_id="${FAILING.id}"}`), 1);
  });

  it('keeps the series bounded: 100,000 channel names published to and 5,000 subscribed to add no series', async () => {
    const own = (text: string): string[] => seriesOf(text).filter((s) => !s.startsWith('switchboard_nodejs_') && !s.startsWith('switchboard_process_'));
    const client = await connectNative(server, `/ws/${WIDE.key}?ack=1`);
    natives.push(client);
    const before = own((await scrape(server)).text);
    for (let i = 0; i < 5_000; i++) client.send({ action: 'subscribe', channel: `wide-${i}` });
    await client.until(() => client.json.filter((m) => m.type === 'subscribed').length === 5_000, 10_000);
    for (let i = 0; i < 100_000; i++) server.broadcast(`name-${i}`, 'x', { appId: WIDE.id });
    const text = (await scrape(server)).text;
    assert.equal(sample(text, `switchboard_channels{app_id="${WIDE.id}"}`), 5_000);
    assert.deepEqual(own(text).sort(), before.sort());
    assert.ok(!text.includes('name-99999') && !text.includes('wide-4999'));
  });
});
