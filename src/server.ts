import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ServerMetrics, startMetricsServer } from './metrics/prometheus.js';
import { ClusterStats } from './cluster/stats.js';
import { RefusalLog, UPGRADE_FAILED } from './refusal-log.js';
import { WireStatsTable } from './transport/wire-stats.js';
import { ClientAddressResolver } from './util/client-address.js';
import { StaticAppRegistry } from './apps/registry.js';
import { createCluster } from './cluster/create.js';
import { validateConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import type { App } from './core/app.js';
import { serverToUserChannel, socketChannel } from './core/channels.js';
import { CounterName, Counters } from './core/counters.js';
import { Hub, type ConnectionTarget } from './core/hub.js';
import { socketIdFactory } from './core/socket-ids.js';
import { createHttpHandler } from './http/handler.js';
import { createLogger, type Logger } from './log.js';
import { nativeRoute } from './protocol/native/route.js';
import { pusherRoute } from './protocol/pusher/route.js';
import { queuePolicyFor } from './protocol/session-limits.js';
import { WsTransport, refuseUpgrade } from './transport/ws-server.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';

/** After answering a malformed or timed-out request, how long the client has to close before the socket is cut. */
const CLIENT_ERROR_LINGER_MS = 1_000;
/** Time to leave the cluster cleanly even when the drain used all of shutdownTimeoutMs. */
const CLUSTER_GOODBYE_MS = 1_000;

/** Whether `work` settled (either way) within `ms`; it is left to finish on its own if not. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
  const result = await Promise.race([settled, timedOut]);
  clearTimeout(timer);
  return result;
}

export interface ServerOptions {
  /** Defaults to a pino logger at config.logLevel. */
  log?: Logger;
}

export interface PublishOptions {
  /** Event name for Pusher subscribers; defaults to "message". */
  event?: string;
  /** App id; defaults to the first configured app. */
  appId?: string;
}

export interface Switchboard {
  readonly config: Config;
  readonly hub: Hub;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** `http://host:port` of the listener, with 127.0.0.1 for a wildcard host. */
  readonly url: string;
  /** The port of the Prometheus listener (GET /metrics), when metricsPort is set. */
  readonly metricsPort: number | undefined;
  /** Publishes to a channel from inside the process (no HTTP round trip). */
  broadcast(channel: string, data: string, options?: PublishOptions): void;
  /** Sends to every connection of a user (native and signed-in Pusher ones); a Buffer goes as a binary frame. */
  sendToUser(user: string, data: string | Buffer, options?: PublishOptions & { session?: string }): void;
  sendToConnection(id: string, data: string | Buffer, options?: PublishOptions): void;
  /** Closes connections by id or user (and session); returns how many. */
  disconnect(target: ConnectionTarget, appId?: string): Promise<number>;
  /** Drains (clients told to reconnect) and stops; resolves when everything is closed. */
  close(): Promise<void>;
}

/** Builds every part from the config, starts listening, and returns the running server. */
export async function createServer(input: ConfigInput | Config = {}, options: ServerOptions = {}): Promise<Switchboard> {
  const config = validateConfig(input);
  const log = options.log ?? createLogger(config.logLevel, config.logFormat);
  const apps = new StaticAppRegistry(config.apps);
  const metrics = new ServerMetrics();
  const refusals = new RefusalLog(log.child({ component: 'refusals' }), config.refusalLogIntervalMs);
  const clusterStats = new ClusterStats(metrics.observeClusterRoundTrip);
  const { bus, claims, rateLimiter } = await createCluster(config, log, { stats: clusterStats, refusals });
  const counters = new Counters(refusals.noteCounter);
  const webhooks: WebhookDispatcher = new WebhookDispatcher(
    config.apps,
    {
      batchMs: config.webhookBatchMs,
      leaveDelayMs: config.webhookLeaveDelayMs,
      timeoutMs: config.webhookTimeoutMs,
      retryForMs: config.webhookRetryForMs,
      maxQueue: config.webhookMaxQueue,
    },
    counters,
    refusals,
    // Called later, when a held-back leave is due; the hub exists by then.
    (appId, event): boolean =>
      event.name === 'channel_vacated' ? !hub.channelInfo(appId, event.channel).occupied : !hub.isMember(appId, event.channel, event.userId),
  );
  const hub: Hub = new Hub(bus, (id) => apps.byId(id), Date.now, webhooks.handle, counters);
  await hub.start();
  const nextSocketId = socketIdFactory();
  const defaultApp = config.apps[0] as App;
  const wireStats = new WireStatsTable(config.metricsMaxApps);
  metrics.watch({
    hub,
    counters,
    apps,
    wire: wireStats,
    cluster: clusterStats,
    webhookQueueDepth: (appId) => webhooks.queueDepth(appId),
    maxApps: config.metricsMaxApps,
  });

  let serving = true;
  const clientAddresses = new ClientAddressResolver(config.trustedProxies);
  const clientAddress = (req: IncomingMessage): string => clientAddresses.of(req);
  const transport = new WsTransport(
    [
      pusherRoute({
        hub,
        log,
        appByKey: (key) => apps.byKey(key),
        nextSocketId,
        activityTimeoutSeconds: config.activityTimeoutSeconds,
        maxConnections: config.maxConnections,
      }),
      nativeRoute({
        hub,
        claims,
        appByKey: (key) => apps.byKey(key),
        defaultApp,
        nextSocketId,
        maxConnections: config.maxConnections,
        pingAfterMs: config.nativePingIntervalSeconds * 1000,
      }),
    ],
    {
      maxMessageBytes: config.maxMessageBytes,
      defaultQueuePolicy: queuePolicyFor(defaultApp),
      activityTimeoutMs: config.activityTimeoutSeconds * 1000,
      shortestPingAfterMs: config.nativePingIntervalSeconds * 1000,
      pongTimeoutMs: config.pongTimeoutSeconds * 1000,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      clientAddress,
      connectionAttemptsPerIpPerSecond: config.connectionAttemptsPerIpPerSecond,
      consumeAttempt: (ip, perSecond) => rateLimiter.consume(`ws-ip:${ip}`, perSecond),
      // Refused before the app is known: counted under "".
      onError: (err) => log.error({ err }, 'a message handler failed; connection closed with 1011'),
      onAdmissionError: (err) => refusals.note('', UPGRADE_FAILED, { err }),
      wireStats,
      onRefused: (reason) =>
        hub.counters.increment('', reason === 'ip_limit' ? CounterName.ConnectionsRefusedIpLimit : CounterName.ConnectionsRefusedRate),
    },
  );
  const http: Server = createHttpServer(
    {
      // Slowloris: a client must finish its headers (an upgrade included) in time.
      headersTimeout: config.handshakeTimeoutMs,
      requestTimeout: config.handshakeTimeoutMs * 3,
      connectionsCheckingInterval: Math.min(1_000, config.handshakeTimeoutMs),
      keepAliveTimeout: 65_000,
    },
    createHttpHandler({
      rateLimiter,
      counters: hub.counters,
      apiRequestsPerIpPerSecond: config.apiRequestsPerIpPerSecond,
      hub,
      apps,
      claims,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      now: Date.now,
      isServing: () => serving,
      servesApi: config.role !== 'websocket',
      onAnswered: metrics.observeHttp,
      refusals,
      clientAddress,
    }),
  );
  if (config.role !== 'api') http.on('upgrade', (req, socket, head) => transport.handleUpgrade(req, socket, head));
  else http.on('upgrade', (_req, socket) => refuseUpgrade(socket, 404, { error: 'This node serves the HTTP API only' }));
  http.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    // Node's own statuses: 431 for oversized headers, 408 for headers (an upgrade's too) not finished in time.
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    // A client that never closes its side (slowloris) would otherwise keep the socket half-open.
    setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
  });

  /** Leaves the cluster (the others drop this node's share at once) and the engine's stores. */
  const leaveCluster = async (): Promise<void> => {
    await hub.close();
    await claims.close();
    await rateLimiter.close();
  };
  // A listener that cannot bind (a port in use) must not leave the other one, or this node's
  // place in the cluster, behind: the caller may retry in the same process.
  const abandon = async (err: unknown, what: string): Promise<never> => {
    transport.close();
    http.close();
    http.closeAllConnections();
    await webhooks.close(0);
    await leaveCluster();
    throw new Error(`cannot listen for ${what}: ${(err as Error).message}`, { cause: err });
  };
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await abandon(err, `clients on ${config.host}:${config.port}`);
  }
  transport.start();
  const port = (http.address() as AddressInfo).port;
  let metricsListener: Awaited<ReturnType<typeof startMetricsServer>> | undefined;
  try {
    if (config.metricsPort > 0) metricsListener = await startMetricsServer(metrics.registry, config.metricsHost || config.host, config.metricsPort);
  } catch (err) {
    await abandon(err, `metrics on ${config.metricsHost || config.host}:${config.metricsPort}`);
  }
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const deadline = Date.now() + config.shutdownTimeoutMs;
    serving = false;
    transport.stopAccepting();
    const conns = apps.all().flatMap((app) => [...hub.connections(app.id)]);
    await spread(conns, Math.min(config.shutdownSpreadMs, config.shutdownTimeoutMs / 2), (conn) => conn.close('shutdown'));
    transport.close(); // anything that connected meanwhile
    await transport.drained(Math.max(0, deadline - Date.now()));
    transport.terminateAll();
    await new Promise<void>((resolve) => {
      http.close(() => resolve());
      http.closeIdleConnections();
      setTimeout(() => http.closeAllConnections(), Math.max(0, deadline - Date.now())).unref();
    });
    await webhooks.close(Math.max(0, deadline - Date.now()));
    if (metricsListener) {
      const { server: listener } = metricsListener;
      await new Promise<void>((resolve) => listener.close(() => resolve()).closeAllConnections());
    }
    refusals.flush();
    // Leaving the cluster waits on the engine's answers: an engine that stopped answering must
    // not hold the shutdown past its deadline (plus a moment to say goodbye when it is spent).
    const leaving = leaveCluster();
    if (await settlesWithin(leaving, Math.max(0, deadline - Date.now()) + CLUSTER_GOODBYE_MS)) await leaving; // its error, if any
    else log.warn({ afterMs: config.shutdownTimeoutMs + CLUSTER_GOODBYE_MS }, 'the cluster engine did not answer in time: stopped without a clean leave');
  };

  const appFor = (appId: string | undefined): App => {
    const app = appId === undefined ? defaultApp : apps.byId(appId);
    if (!app) throw new Error(`unknown app id: ${appId}`);
    return app;
  };
  return {
    config,
    hub,
    port,
    metricsPort: metricsListener?.port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    broadcast(channel, data, publish = {}) {
      hub.publish(appFor(publish.appId), { kind: 'event', channel, event: publish.event ?? 'message', data });
    },
    sendToUser(user, data, send = {}) {
      hub.publish(appFor(send.appId), {
        kind: 'event',
        channel: serverToUserChannel(user),
        event: send.event ?? 'message',
        data,
        ...(send.session === undefined ? {} : { session: send.session }),
      });
    },
    sendToConnection(id, data, send = {}) {
      hub.publish(appFor(send.appId), { kind: 'event', channel: socketChannel(id), event: send.event ?? 'message', data });
    },
    disconnect: (target, appId) => hub.disconnect(appFor(appId).id, target),
    close: () => (closing ??= close()),
  };
}

/**
 * Runs `each` over `items` in slices spread evenly over `windowMs`, so that clients told to
 * reconnect do not all arrive at the other nodes in the same instant.
 */
async function spread<T>(items: readonly T[], windowMs: number, each: (item: T) => void): Promise<void> {
  const SLICE_MS = 50;
  const slices = Math.max(1, Math.floor(windowMs / SLICE_MS));
  const perSlice = Math.max(1, Math.ceil(items.length / slices));
  for (let i = 0; i < items.length; i += perSlice) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, SLICE_MS));
    for (const item of items.slice(i, i + perSlice)) each(item);
  }
}
