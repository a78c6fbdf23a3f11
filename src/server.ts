import type { Server } from 'node:http';
import { startMetricsServer } from './metrics/prometheus.js';
import { createAppStore } from './apps/create.js';
import { AppManager } from './apps/manage.js';
import { StaticAppRegistry, type AppRegistry } from './apps/registry.js';
import { AppResolver } from './apps/resolver.js';
import { validateConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import type { Hub } from './core/hub.js';
import { createLogger, type Logger } from './log.js';
import { buildHub } from './server/build-hub.js';
import type { SwitchboardHooks } from './embedding/hooks.js';
import { embeddingApi, hookSetup, type EmbeddingApi } from './server/embedding.js';
import { createListeners, listen } from './server/listeners.js';
import { createReporting, watchHub } from './server/reporting.js';
import { shutDown } from './server/shutdown.js';
import { startDashboardServer } from './dashboard/server.js';
import { startHttpsRedirect } from './transport/https-redirect.js';
import { CertificateReloader } from './transport/tls.js';

export type { PublishOptions } from './server/embedding.js';

export interface ServerOptions {
  /** Defaults to a pino logger at config.logLevel. */
  log?: Logger;
  /** The application's hooks: lifecycle notices, and a say over what clients send (see README, Embedding). */
  hooks?: SwitchboardHooks;
}

export interface Switchboard extends EmbeddingApi {
  readonly config: Config;
  /** The whole hub, for embedders; the server's own parts take the narrow views in core/hub-view.ts. */
  readonly hub: Hub;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** `http://host:port` of the listener, with 127.0.0.1 for a wildcard host. */
  readonly url: string;
  /** The port of the Prometheus listener (GET /metrics), when metricsPort is set. */
  readonly metricsPort: number | undefined;
  /** The port of the dashboard's own listener, when dashboardPort is set (and the dashboard is on). */
  readonly dashboardPort: number | undefined;
  /** The port of the plain-HTTP listener that redirects to HTTPS, when tlsRedirectPort is set. */
  readonly redirectPort: number | undefined;
  /**
   * Reads the TLS files again (the CLI does this on SIGHUP); open connections keep their
   * certificate. False when TLS is off, the files are unchanged, or they cannot be used (logged).
   */
  reloadTls(): boolean;
  /** Where apps are looked up (and cached, for a database store). */
  readonly apps: AppRegistry;
  /** Drains (clients told to reconnect) and stops; resolves when everything is closed. */
  close(): Promise<void>;
}

/**
 * Builds every part from the config, starts listening, and returns the running server. The
 * steps live in server/: the hub on its cluster engine, the listeners, the shutdown sequence.
 */
export async function createServer(input: ConfigInput | Config = {}, options: ServerOptions = {}): Promise<Switchboard> {
  const config = validateConfig(input);
  const log = options.log ?? createLogger(config.logLevel, config.logFormat);
  // Before anything connects to the cluster: a missing or unusable key is a start-up error.
  const tls = config.tlsCert
    ? new CertificateReloader({ cert: config.tlsCert, key: config.tlsKey, ca: config.tlsCa, passphrase: config.tlsPassphrase }, log.child({ component: 'tls' }))
    : undefined;
  const store = await createAppStore(config, log);
  // The config store keeps its fixed, indexed registry; a database is asked through a cache.
  const resolver =
    config.appStore === 'config'
      ? undefined
      : new AppResolver(store, { ttlMs: config.appCacheTtlMs, negativeCacheSize: config.appNegativeCacheSize }, log.child({ component: 'apps' }));
  const apps: AppRegistry = resolver ?? new StaticAppRegistry(config.apps);
  const reporting = createReporting(config, log);
  let parts: Awaited<ReturnType<typeof buildHub>>;
  try {
    parts = await buildHub(config, apps, log, reporting, resolver);
  } catch (err) {
    await store.close();
    throw err;
  }
  watchHub(reporting, parts, apps, config);
  const { hub, webhooks, counters } = parts;
  const leaveCluster = async (): Promise<void> => {
    await parts.leaveCluster();
    await store.close();
  };
  let serving = true;
  const hooks = options.hooks && hookSetup(options.hooks, config, counters, log);
  const { transport, http, dashboard } = createListeners(config, apps, parts, log, reporting, () => serving, tls, {
    adminToken: config.adminToken || undefined,
    appManager: new AppManager(store),
    // This node has re-read the app when the admin API answers; the others re-read it on the news.
    announceAppChanged: async (appId) => {
      await resolver?.invalidate(appId);
      await hub.announceAppChanged(appId);
    },
  }, hooks);
  let metrics: { readonly server: Server; readonly port: number } | undefined;
  let redirect: { readonly server: Server; readonly port: number } | undefined;
  let dashboardListener: { readonly server: Server; readonly port: number } | undefined;

  // A listener that cannot bind (a port in use) must not leave the other one, or this node's
  // place in the cluster, behind: the caller may retry in the same process.
  const abandon = async (err: unknown, what: string): Promise<never> => {
    transport.close();
    tls?.close();
    redirect?.server.close();
    metrics?.server.close();
    dashboardListener?.server.close();
    http.close();
    http.closeAllConnections();
    await webhooks.close(0);
    await leaveCluster();
    throw new Error(`cannot listen for ${what}: ${(err as Error).message}`, { cause: err });
  };
  let port = 0;
  try {
    port = await listen(http, config);
  } catch (err) {
    await abandon(err, `clients on ${config.host}:${config.port}`);
  }
  transport.start();
  try {
    if (config.metricsPort > 0) {
      metrics = await startMetricsServer(reporting.metrics.registry, config.metricsHost || config.host, config.metricsPort, config.metricsTls ? tls : undefined);
    }
  } catch (err) {
    await abandon(err, `metrics on ${config.metricsHost || config.host}:${config.metricsPort}`);
  }
  try {
    if (config.tlsRedirectPort > 0) redirect = await startHttpsRedirect(config.host, config.tlsRedirectPort, port);
  } catch (err) {
    await abandon(err, `the HTTPS redirect on ${config.host}:${config.tlsRedirectPort}`);
  }
  try {
    if (dashboard) dashboardListener = await startDashboardServer(dashboard, config.dashboardPath, config.dashboardHost || config.host, config.dashboardPort, log, config.dashboardTls ? tls : undefined);
  } catch (err) {
    await abandon(err, `the dashboard on ${config.dashboardHost || config.host}:${config.dashboardPort}`);
  }
  if (config.tlsWatch) tls?.watch();
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let closing: Promise<void> | undefined;
  const running = { apps, hub, transport, http, webhooks, metrics, redirect, dashboard: dashboardListener, tls, leaveCluster, log, refusals: reporting.refusals };
  return {
    config,
    hub,
    port,
    metricsPort: metrics?.port,
    redirectPort: redirect?.port,
    dashboardPort: dashboardListener?.port,
    reloadTls: () => tls?.reload('reloadTls() or SIGHUP') ?? false,
    apps,
    url: `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...embeddingApi(hub, counters, apps, config),
    close: () => (closing ??= shutDown(running, config, () => (serving = false))),
  };
}
