import { STATUS_CODES, createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { AppRegistry } from '../apps/registry.js';
import { appSchema, type Config } from '../config/schema.js';
import type { AdminApiContext } from '../http/admin-api.js';
import type { App } from '../core/app.js';
import { CounterName } from '../core/counters.js';
import { socketIdFactory } from '../core/socket-ids.js';
import { createDashboardHandler, type DashboardHandler } from '../dashboard/handler.js';
import { CorsPolicy } from '../http/cors.js';
import { createHttpHandler } from '../http/handler.js';
import type { Logger } from '../log.js';
import { nativeRoute } from '../protocol/native/route.js';
import { pusherRoute } from '../protocol/pusher/route.js';
import { queuePolicyFor } from '../protocol/session-limits.js';
import type { CertificateReloader } from '../transport/tls.js';
import { WsTransport, refuseUpgrade } from '../transport/ws/server.js';
import { ClientAddressResolver } from '../util/client-address.js';
import type { HookSetup } from '../embedding/connection-hooks.js';
import { UPGRADE_FAILED } from '../refusal-log.js';
import type { HubParts } from './build-hub.js';
import type { Reporting } from './reporting.js';

/** After answering a malformed or timed-out request, how long the client has to close before the socket is cut. */
const CLIENT_ERROR_LINGER_MS = 1_000;

export interface Listeners {
  readonly transport: WsTransport;
  readonly http: Server;
  /** The dashboard for its own listener (dashboardPort), when it is on and not on the main port. */
  readonly dashboard: DashboardHandler | undefined;
}

/**
 * The WebSocket engine with both protocol front-ends, and the HTTP server (APIs, health, upgrades)
 * in front of it; an HTTPS one with `tls`, serving wss:// upgrades on the same port.
 */
export function createListeners(
  config: Config,
  apps: AppRegistry,
  parts: HubParts,
  log: Logger,
  reporting: Reporting,
  isServing: () => boolean,
  tls: CertificateReloader | undefined,
  admin: Omit<AdminApiContext, 'log' | 'maxRequestBodyBytes'>,
  hooks?: HookSetup,
): Listeners {
  const { hub, counters, claims, rateLimiter, idempotency } = parts;
  const { refusals, metrics } = reporting;
  const nextSocketId = socketIdFactory();
  // With a database store there is no "first app": /ws must name its key.
  const defaultApp: App | undefined = config.appStore === 'config' ? config.apps[0] : undefined;
  const clientAddresses = new ClientAddressResolver(config.trustedProxies);
  const clientAddress = (req: IncomingMessage): string => clientAddresses.of(req);
  const transport = new WsTransport(
    [
      pusherRoute({
        hub,
        counters,
        log,
        appByKey: (key) => apps.byKey(key),
        nextSocketId,
        activityTimeoutSeconds: config.activityTimeoutSeconds,
        maxConnections: config.maxConnections,
        clientAddress,
        hooks,
      }),
      nativeRoute({
        hub,
        counters,
        claims,
        appByKey: (key) => apps.byKey(key),
        defaultApp,
        nextSocketId,
        maxConnections: config.maxConnections,
        pingAfterMs: config.nativePingIntervalSeconds * 1000,
        clientAddress,
        hooks,
      }),
    ],
    {
      maxMessageBytes: config.maxMessageBytes,
      defaultQueuePolicy: queuePolicyFor(defaultApp ?? appSchema.parse({ id: '-', key: '-', secret: '-' })),
      activityTimeoutMs: config.activityTimeoutSeconds * 1000,
      shortestPingAfterMs: config.nativePingIntervalSeconds * 1000,
      pongTimeoutMs: config.pongTimeoutSeconds * 1000,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      clientAddress,
      connectionAttemptsPerIpPerSecond: config.connectionAttemptsPerIpPerSecond,
      consumeAttempt: (ip, perSecond) => rateLimiter.consume(`ws-ip:${ip}`, perSecond),
      // Refused before the app is known: counted under "".
      onError: (err) => log.error({ err }, 'a message handler failed; connection closed with 1011'),
      onRefused: (reason) => counters.increment('', reason === 'ip_limit' ? CounterName.ConnectionsRefusedIpLimit : CounterName.ConnectionsRefusedRate),
      onAdmissionError: (err) => refusals.note('', UPGRADE_FAILED, { err }),
      wireStats: reporting.wire,
    },
  );
  const httpOptions = {
    // Slowloris: a client must finish its headers (an upgrade included) in time.
    headersTimeout: config.handshakeTimeoutMs,
    requestTimeout: config.handshakeTimeoutMs * 3,
    connectionsCheckingInterval: Math.min(1_000, config.handshakeTimeoutMs),
    keepAliveTimeout: 65_000,
  };
  const cors = new CorsPolicy(config.corsOrigins, config.apps);
  // On when either credential is set; the sign-in form takes either.
  const credentials = [config.dashboardPassword, admin.adminToken].filter((c): c is string => c !== undefined && c !== '');
  const dashboard =
    credentials.length === 0
      ? undefined
      : createDashboardHandler({
          credentials,
          path: config.dashboardPath,
          sessionMinutes: config.dashboardSessionMinutes,
          hub,
          apps,
          manage: { appManager: admin.appManager, announceAppChanged: admin.announceAppChanged, log, storeKind: config.appStore },
          isServing,
          clientAddress,
        });
  const handler = createHttpHandler({
      rateLimiter,
      counters,
      apiRequestsPerIpPerSecond: config.apiRequestsPerIpPerSecond,
      hub,
      apps,
      claims,
      idempotency,
      refusals,
      log,
      maxRequestBodyBytes: config.maxRequestBodyBytes,
      now: Date.now,
      isServing,
      servesApi: config.role !== 'websocket',
      clientAddress,
      dashboard: config.dashboardPort === 0 ? dashboard : undefined,
      webhooks: parts.webhooks,
      ...admin,
      onAnswered: metrics.observeHttp,
      ...(cors.enabled ? { cors } : {}),
    });
  const http: Server = tls
    ? // A client that opens a connection and never finishes the TLS handshake is cut like a slow HTTP one.
      tls.serve(createHttpsServer({ ...httpOptions, handshakeTimeout: config.handshakeTimeoutMs, ...tls.options() }, handler))
    : createHttpServer(httpOptions, handler);
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
  return { transport, http, dashboard: config.dashboardPort === 0 ? undefined : dashboard };
}

/** Binds the client listener; resolves with the port actually bound. */
export async function listen(http: Server, config: Config): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ port: config.port, host: config.host, backlog: config.listenBacklog }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  return (http.address() as AddressInfo).port;
}
