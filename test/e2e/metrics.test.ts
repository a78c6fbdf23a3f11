import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { RawClient, serverSdk } from '../helpers/clients.js';
import { freePort } from '../helpers/cluster.js';
import { sample, scrape } from '../helpers/metrics.js';
import { closeAll, connectNative, subscribeNative, type NativeClient } from '../helpers/native.js';
import { rawClient, subscribeRaw } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';

const QUOTA = { id: 'quota-id', key: 'quota-key', secret: 'quota-secret', maxConnections: 1 };


describe('Prometheus metrics', () => {
  let server: Switchboard;
  const clients: Array<RawClient | NativeClient> = [];
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true }, QUOTA], metricsPort: await freePort() });
  });
  after(async () => {
    await closeAll(clients.filter((c): c is NativeClient => !(c instanceof RawClient)));
    for (const c of clients) if (c instanceof RawClient) c.close();
    await server.close();
  });

  it('reports connections per protocol, channels, and what was published and delivered, per app', async () => {
    const pusher = await rawClient(server);
    const native = await connectNative(server, '/ws?ack=1');
    clients.push(pusher, native);
    await subscribeRaw(pusher, 'metrics-orders');
    await subscribeNative(native, 'metrics-orders');
    await serverSdk(server).trigger('metrics-orders', 'created', { id: 1 });
    await pusher.next((m) => m.event === 'created');
    await native.frame((f) => f.text.includes('"id":1'));

    const { status, type, text } = await scrape(server);
    assert.equal(status, 200);
    assert.match(type ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(sample(text, 'switchboard_connections{app_id="app-id",protocol="pusher"}'), 1);
    assert.equal(sample(text, 'switchboard_connections{app_id="app-id",protocol="native"}'), 1);
    assert.equal(sample(text, 'switchboard_channels{app_id="app-id"}'), 1);
    assert.equal(sample(text, 'switchboard_messages_published_total{app_id="app-id"}'), 1);
    assert.equal(sample(text, 'switchboard_messages_delivered_total{app_id="app-id"}'), 2);
    assert.ok((sample(text, 'switchboard_bytes_delivered_total{app_id="app-id"}') ?? 0) > 20);
    assert.equal(sample(text, 'switchboard_cluster_healthy'), 1);
    // Process metrics come along, under the same prefix.
    assert.ok(sample(text, 'switchboard_process_cpu_user_seconds_total') !== undefined);
  });

  it('exports the refusal counters per app', async () => {
    const first = await rawClient(server, QUOTA.key);
    clients.push(first);
    await first.socketId();
    const refused = await rawClient(server, QUOTA.key);
    clients.push(refused);
    await refused.next((m) => m.event === 'pusher:error');
    const { text } = await scrape(server);
    assert.equal(sample(text, 'switchboard_connections_refused_quota_total{app_id="quota-id"}'), 1);
    assert.equal(sample(text, 'switchboard_connections_refused_quota_total{app_id="app-id"}'), 0);
  });

  it("answers GET /usage with the process's memory figures in soketi's shape", async () => {
    const { status, type, text } = await scrape(server, '/usage');
    assert.equal(status, 200);
    assert.equal(type, 'application/json');
    const { memory } = JSON.parse(text) as { memory: Record<string, number> };
    assert.deepEqual(Object.keys(memory).sort(), ['free', 'percent', 'total', 'used']);
    // used sums the resident set and more: at least the resident set of a running Node process.
    assert.ok(memory.used > 10 * 1024 * 1024, `used ${memory.used}`);
    assert.ok(memory.total > 0);
    assert.equal(memory.free, memory.total - memory.used);
    assert.ok(Math.abs(memory.percent - (memory.used / memory.total) * 100) < 1e-9);
  });

  it('answers 404 elsewhere on the metrics port', async () => {
    const { status } = await scrape(server, '/');
    assert.equal(status, 404);
  });

  it('is off unless metricsPort is set, and its listener closes with the server', async () => {
    const plain = await startServer();
    assert.equal(plain.metricsPort, undefined);
    await plain.close();
    const port = await freePort();
    const withMetrics = await startServer({ metricsPort: port });
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
    await withMetrics.close();
    await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`));
  });
});

describe('a port that is taken', () => {
  it('makes createServer fail naming the client listener', async (t) => {
    const blocker = await startServer();
    t.after(() => blocker.close());
    await assert.rejects(startServer({ port: blocker.port }), /cannot listen for clients on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
  });

  it('makes createServer fail naming the metrics listener, and leaves the main port free for a retry', async (t) => {
    const blocker = await startServer();
    t.after(() => blocker.close());
    const port = await freePort();
    await assert.rejects(startServer({ port, metricsPort: blocker.port }), /cannot listen for metrics on 127\.0\.0\.1:\d+: .*EADDRINUSE/);
    const retry = await startServer({ port, metricsPort: 0 });
    t.after(() => retry.close());
    assert.equal(retry.port, port);
    assert.equal((await fetch(`${retry.url}/up`)).status, 200);
  });
});
