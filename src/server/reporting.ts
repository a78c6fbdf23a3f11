import type { AppRegistry } from '../apps/registry.js';
import { ClusterStats } from '../cluster/stats.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ServerMetrics } from '../metrics/prometheus.js';
import { RefusalLog } from '../refusal-log.js';
import { WireStatsTable } from '../transport/wire-stats.js';
import type { HubParts } from './build-hub.js';

/** Where the server's parts report what happens: counts for the metrics, and the throttled refusal log. */
export interface Reporting {
  readonly metrics: ServerMetrics;
  readonly refusals: RefusalLog;
  readonly cluster: ClusterStats;
  readonly wire: WireStatsTable;
}

export function createReporting(config: Config, log: Logger): Reporting {
  const metrics = new ServerMetrics();
  return {
    metrics,
    refusals: new RefusalLog(log.child({ component: 'refusals' }), config.refusalLogIntervalMs),
    cluster: new ClusterStats(metrics.observeClusterRoundTrip),
    wire: new WireStatsTable(config.metricsMaxApps),
  };
}

/** Points the metrics' scrape-time collectors at the running hub. */
export function watchHub(reporting: Reporting, parts: HubParts, apps: AppRegistry, config: Config): void {
  reporting.metrics.watch({
    hub: parts.hub,
    counters: parts.counters,
    apps,
    wire: reporting.wire,
    cluster: reporting.cluster,
    webhookQueueDepth: (appId) => parts.webhooks.queueDepth(appId),
    maxApps: config.metricsMaxApps,
  });
}
