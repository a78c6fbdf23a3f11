import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { processUsage } from './usage.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AppRegistry } from '../apps/registry.js';
import type { ClusterStats } from '../cluster/stats.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { Traffic } from '../core/app-state.js';
import type { HubReadView } from '../core/hub-view.js';
import type { CertificateReloader } from '../transport/tls.js';
import { listen } from '../util/listen.js';
import { OTHER_APPS, type WireStats, type WireStatsTable } from '../transport/wire-stats.js';

const PREFIX = 'switchboard_';
/** Refusals made before an app is known are counted under this app_id. */
const NO_APP = '';

/** HTTP API answers take milliseconds; a store that hangs shows up in the last buckets. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** A cluster request crosses the engine twice (ask, answer), bounded by clusterRequestTimeoutMs. */
const ROUND_TRIP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** What the scrape-time collectors read: the node's own counters, nothing counted for them. */
export interface MetricsSources {
  readonly hub: HubReadView;
  /** Refusals and losses per app. */
  readonly counters: Counters;
  readonly apps: AppRegistry;
  readonly wire: WireStatsTable;
  readonly cluster: ClusterStats;
  /** Webhook events of the app waiting to be sent. */
  readonly webhookQueueDepth: (appId: string) => number;
  /** Apps with an app_id label of their own; the rest are summed under "_other". */
  readonly maxApps: number;
}

/**
 * The Prometheus metrics of one server (one registry each, so several servers can share a
 * process). Almost everything is read when Prometheus scrapes, from counts the server keeps
 * anyway (connection and channel maps, traffic totals, refusal counters): nothing is counted per
 * recipient for it. Only the two latency histograms are fed as things happen, once per HTTP
 * request and once per cluster request. No label ever holds a channel name, user or path.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'route' | 'status'>;
  private readonly httpDuration: Histogram<'route'>;
  private readonly clusterRoundTrip: Histogram;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
    const registers = [this.registry];
    this.httpRequests = new Counter({ name: `${PREFIX}http_requests_total`, help: 'HTTP requests answered, by route and status', labelNames: ['route', 'status'], registers });
    this.httpDuration = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'Time to answer an HTTP request, by route',
      labelNames: ['route'],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.clusterRoundTrip = new Histogram({
      name: `${PREFIX}cluster_request_duration_seconds`,
      help: 'Round trip of a request to the other nodes over the cluster engine, until every node answered',
      buckets: ROUND_TRIP_BUCKETS,
      registers,
    });
  }

  readonly observeHttp = (route: string, status: number, seconds: number): void => {
    this.httpRequests.inc({ route, status: String(status) });
    this.httpDuration.observe({ route }, seconds);
  };

  readonly observeClusterRoundTrip = (seconds: number): void => {
    this.clusterRoundTrip.observe(seconds);
  };

  /** Registers the collectors that read `sources` at scrape time. */
  watch(sources: MetricsSources): void {
    const { hub, counters, wire, cluster } = sources;
    const registers = [this.registry];
    /** The configured apps, each with its label (the cap applied). */
    const labelled = (): Array<[appId: string, label: string]> =>
      sources.apps.all().map((a, i) => [a.id, i < sources.maxApps ? a.id : OTHER_APPS]);

    new Gauge({
      name: `${PREFIX}connections`,
      help: 'Open WebSocket connections on this node',
      labelNames: ['app_id', 'protocol'],
      registers,
      collect() {
        this.reset();
        for (const [appId, label] of labelled()) {
          const byProtocol = new Map<string, number>([['pusher', 0], ['native', 0]]);
          for (const conn of hub.connections(appId)) byProtocol.set(conn.protocol, (byProtocol.get(conn.protocol) ?? 0) + 1);
          for (const [protocol, n] of byProtocol) this.inc({ app_id: label, protocol }, n);
        }
      },
    });

    perApp(registers, Gauge, 'channels', 'Channels with at least one subscriber on this node', () =>
      labelled().map(([appId, label]) => [label, hub.localChannelCount(appId)]),
    );
    perApp(registers, Gauge, 'webhook_queue_depth', 'Webhook events waiting to be sent (all targets of the app)', () =>
      labelled().map(([appId, label]) => [label, sources.webhookQueueDepth(appId)]),
    );

    copied(registers, Gauge, 'cluster_healthy', '1 while this node is connected to its cluster engine (always 1 on the local adapter)', [], (add) => add({}, hub.isHealthy ? 1 : 0));

    const apps = sources.apps;
    copied(registers, Gauge, 'app_store_available', '1 while the app store answers (always 1 for the config store)', [], (add) => add({}, apps.isAvailable ? 1 : 0));
    copied(registers, Counter, 'app_store_queries_total', 'Look-ups sent to the app store (cache misses and refreshes); 0 for the config store', [], (add) =>
      add({}, apps.storeQueries),
    );

    const traffic: [string, string, keyof Traffic][] = [
      ['messages_published_total', 'Messages published from this node (HTTP API, client events, embedding API)', 'published'],
      ['messages_delivered_total', 'Channel messages handed to connections on this node', 'delivered'],
      ['bytes_delivered_total', 'Bytes of channel messages handed to connections on this node', 'deliveredBytes'],
    ];
    for (const [name, help, field] of traffic) {
      perApp(registers, Counter, name, help, () => labelled().map(([appId, label]) => [label, hub.traffic(appId)[field]]));
    }

    for (const counter of Object.values(CounterName)) {
      perApp(registers, Counter, `${counter}_total`, `Per-app counter "${counter}" (see README, Metrics)`, () =>
        [[NO_APP, NO_APP] as [string, string], ...labelled()].map(([appId, label]) => [label, counters.snapshot(appId)[counter]]),
      );
    }

    const wireTotals: [string, string, keyof WireStats][] = [
      ['connections_opened_total', 'WebSocket connections opened for the app', 'opened'],
      ['ws_messages_received_total', 'WebSocket messages received from clients', 'messagesIn'],
      ['ws_bytes_received_total', 'Bytes of WebSocket messages received from clients', 'bytesIn'],
      ['ws_messages_sent_total', 'WebSocket frames written to clients (every frame, control answers included)', 'messagesOut'],
      ['ws_bytes_sent_total', 'Bytes of WebSocket frames written to clients', 'bytesOut'],
    ];
    for (const [name, help, field] of wireTotals) {
      copied(registers, Counter, name, help, ['app_id', 'protocol'], (add) => {
        for (const [appId, protocol, stats] of wire.entries()) add({ app_id: appId, protocol }, stats[field] as number);
      });
    }
    copied(
      registers,
      Counter,
      'connections_closed_total',
      'WebSocket connections closed, by close code (the server\'s, or the client\'s: 1000-1015 as they are, others as "other")',
      ['app_id', 'protocol', 'code'],
      (add) => {
        for (const [appId, protocol, stats] of wire.entries()) for (const [code, n] of stats.closed) add({ app_id: appId, protocol, code }, n);
      },
    );

    const clusterTotals: [string, string, keyof ClusterStats][] = [
      ['cluster_messages_sent_total', 'Messages this node published to the cluster engine', 'sent'],
      ['cluster_messages_received_total', 'Messages from other nodes received over the cluster engine', 'received'],
      ['cluster_channel_messages_in_total', 'Channel messages the engine brought to this node, its own echoes included (what clusterRouting decides)', 'channelMessagesIn'],
      ['cluster_requests_total', 'Requests this node sent to the other nodes (channel lists, presence, terminations)', 'requests'],
      ['cluster_request_timeouts_total', 'Requests answered with what arrived because a node did not answer in time', 'requestTimeouts'],
    ];
    for (const [name, help, field] of clusterTotals) copied(registers, Counter, name, help, [], (add) => add({}, cluster[field] as number));
  }
}

/** A metric whose values live elsewhere (totals, or levels), copied in at scrape time: `fill` adds each labelled value. */
function copied<L extends string>(
  registers: Registry[],
  Kind: typeof Counter | typeof Gauge,
  name: string,
  help: string,
  labelNames: readonly L[],
  fill: (add: (labels: Partial<Record<L, string>>, value: number) => void) => void,
): void {
  new Kind<L>({
    name: `${PREFIX}${name}`,
    help,
    labelNames,
    registers,
    collect(this: Counter<L> | Gauge<L>) {
      this.reset();
      fill((labels, value) => this.inc(labels, value));
    },
  });
}

/** A metric with an app_id label whose values live elsewhere (a total, or a level), copied in at scrape time. */
function perApp(registers: Registry[], Kind: typeof Counter | typeof Gauge, name: string, help: string, read: () => [label: string, value: number][]): void {
  copied(registers, Kind, name, help, ['app_id'], (add) => {
    // Apps past the cap share a label: their values add up.
    for (const [label, value] of read()) add({ app_id: label }, value);
  });
}

/**
 * GET /metrics (and soketi's GET /usage) on its own listener, apart from the public port, as
 * Prometheus scrapes it unauthenticated; over TLS when `tls` is given (a scraper outside the host's network).
 */
export async function startMetricsServer(registry: Registry, host: string, port: number, tls?: CertificateReloader): Promise<{ server: Server; port: number }> {
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
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
  };
  const server: Server = tls ? tls.serve(createHttpsServer(tls.options(), answer)) : createServer(answer);
  return { server, port: await listen(server, port, host) };
}
