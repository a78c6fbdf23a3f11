import { createServer, type Server } from 'node:http';
import { processUsage } from './usage.js';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppRegistry } from '../apps/registry.js';
import type { Traffic } from '../core/app-state.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { HubReadView } from '../core/hub-view.js';

const PREFIX = 'switchboard_';
/** Refusals made before an app is known are counted under this app_id. */
const NO_APP = '';

/**
 * A Prometheus registry over the hub's state. Nothing is counted per message for it: gauges and
 * counters are read from the hub (connection and channel maps, traffic totals, refusal counters)
 * when Prometheus scrapes. One registry per server, so several servers can share a process.
 */
export function createMetricsRegistry(hub: HubReadView, counters: Counters, apps: AppRegistry): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: PREFIX });
  const appIds = (): string[] => apps.all().map((a) => a.id);

  new Gauge({
    name: `${PREFIX}connections`,
    help: 'Open WebSocket connections on this node',
    labelNames: ['app_id', 'protocol'],
    registers: [registry],
    collect() {
      this.reset();
      for (const appId of appIds()) {
        const byProtocol = new Map<string, number>([['pusher', 0], ['native', 0]]);
        for (const conn of hub.connections(appId)) byProtocol.set(conn.protocol, (byProtocol.get(conn.protocol) ?? 0) + 1);
        for (const [protocol, n] of byProtocol) this.set({ app_id: appId, protocol }, n);
      }
    },
  });

  new Gauge({
    name: `${PREFIX}channels`,
    help: 'Channels with at least one subscriber on this node',
    labelNames: ['app_id'],
    registers: [registry],
    collect() {
      for (const appId of appIds()) this.set({ app_id: appId }, hub.localChannelCount(appId));
    },
  });

  new Gauge({
    name: `${PREFIX}cluster_healthy`,
    help: '1 while this node is connected to its cluster engine (always 1 on the local adapter)',
    registers: [registry],
    collect() {
      this.set(hub.isHealthy ? 1 : 0);
    },
  });

  const traffic: [string, string, keyof Traffic][] = [
    ['messages_published_total', 'Messages published from this node (HTTP API, client events, embedding API)', 'published'],
    ['messages_delivered_total', 'Frames handed to connections on this node', 'delivered'],
    ['bytes_delivered_total', 'Bytes of frames handed to connections on this node', 'deliveredBytes'],
  ];
  for (const [name, help, field] of traffic) {
    totalsCounter(registry, `${PREFIX}${name}`, help, () => appIds().map((appId) => [appId, hub.traffic(appId)[field]]));
  }

  for (const counter of Object.values(CounterName)) {
    totalsCounter(registry, `${PREFIX}${counter}_total`, `Per-app counter "${counter}" (see README, Limits and policies)`, () =>
      [NO_APP, ...appIds()].map((appId) => [appId, counters.snapshot(appId)[counter]]),
    );
  }
  return registry;
}

/** A counter whose values live elsewhere (monotonic totals), copied in at scrape time. */
function totalsCounter(registry: Registry, name: string, help: string, read: () => [string, number][]): void {
  new Counter({
    name,
    help,
    labelNames: ['app_id'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [appId, value] of read()) this.inc({ app_id: appId }, value);
    },
  });
}

/**
 * GET /metrics (and soketi's GET /usage) on its own listener, apart from the public port, as
 * Prometheus scrapes it unauthenticated.
 */
export async function startMetricsServer(registry: Registry, host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === '/usage') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(processUsage()));
      return;
    }
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found: GET /metrics or GET /usage\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
      () => res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics collection failed\n'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
