import type { Server } from 'node:http';
import { createMetricsRegistry, startMetricsServer } from './metrics/prometheus.js';
import { StaticAppRegistry } from './apps/registry.js';
import { validateConfig } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import type { Hub } from './core/hub.js';
import { createLogger, type Logger } from './log.js';
import { buildHub } from './server/build-hub.js';
import { embeddingApi, type EmbeddingApi } from './server/embedding.js';
import { createListeners, listen } from './server/listeners.js';
import { shutDown } from './server/shutdown.js';

export type { PublishOptions } from './server/embedding.js';

export interface ServerOptions {
  /** Defaults to a pino logger at config.logLevel. */
  log?: Logger;
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
  /** Drains (clients told to reconnect) and stops; resolves when everything is closed. */
  close(): Promise<void>;
}

/**
 * Builds every part from the config, starts listening, and returns the running server. The
 * steps live in server/: the hub on its cluster engine, the listeners, the shutdown sequence.
 */
export async function createServer(input: ConfigInput | Config = {}, options: ServerOptions = {}): Promise<Switchboard> {
  const config = validateConfig(input);
  const log = options.log ?? createLogger(config.logLevel);
  const apps = new StaticAppRegistry(config.apps);
  const parts = await buildHub(config, apps, log);
  const { hub, webhooks, counters, leaveCluster } = parts;
  let serving = true;
  const { transport, http } = createListeners(config, apps, parts, log, () => serving);

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
  let port = 0;
  try {
    port = await listen(http, config);
  } catch (err) {
    await abandon(err, `clients on ${config.host}:${config.port}`);
  }
  transport.start();
  let metrics: { readonly server: Server; readonly port: number } | undefined;
  try {
    if (config.metricsPort > 0) metrics = await startMetricsServer(createMetricsRegistry(hub, counters, apps), config.metricsHost || config.host, config.metricsPort);
  } catch (err) {
    await abandon(err, `metrics on ${config.metricsHost || config.host}:${config.metricsPort}`);
  }
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;

  let closing: Promise<void> | undefined;
  const running = { apps, hub, transport, http, webhooks, metrics, leaveCluster, log };
  return {
    config,
    hub,
    port,
    metricsPort: metrics?.port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...embeddingApi(hub, apps, config.apps[0]),
    close: () => (closing ??= shutDown(running, config, () => (serving = false))),
  };
}
