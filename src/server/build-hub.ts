import type { AppRegistry } from '../apps/registry.js';
import { createCluster, type ClusterParts } from '../cluster/create.js';
import type { Config } from '../config/schema.js';
import { Counters } from '../core/counters.js';
import { Hub } from '../core/hub.js';
import type { Logger } from '../log.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';

export interface HubParts extends ClusterParts {
  readonly hub: Hub;
  readonly counters: Counters;
  readonly webhooks: WebhookDispatcher;
  /** Leaves the cluster (the others drop this node's share at once) and closes the engine's stores. */
  readonly leaveCluster: () => Promise<void>;
}

/** Joins the cluster engine the config names and starts the hub on it, with its webhooks and counters. */
export async function buildHub(config: Config, apps: AppRegistry, log: Logger): Promise<HubParts> {
  const cluster = await createCluster(config, log);
  const counters = new Counters();
  const webhooks: WebhookDispatcher = new WebhookDispatcher(
    config.apps,
    {
      batchMs: config.webhookBatchMs,
      leaveDelayMs: config.webhookLeaveDelayMs,
      timeoutMs: config.webhookTimeoutMs,
      retryForMs: config.webhookRetryForMs,
      maxQueue: config.webhookMaxQueue,
      // Called when a request ends; the hub exists by then.
      report: (appId, sent, detail) => {
        if (hub.tap.watched) hub.tap.emit(appId, { type: sent ? 'webhook_sent' : 'webhook_failed', detail });
      },
    },
    counters,
    log.child({ component: 'webhooks' }),
    // Called later, when a held-back leave is due; the hub exists by then.
    (appId, event): boolean =>
      event.name === 'channel_vacated' ? !hub.channelInfo(appId, event.channel).occupied : !hub.isMember(appId, event.channel, event.userId),
  );
  const hub: Hub = new Hub(cluster.bus, (id) => apps.byId(id), Date.now, webhooks.handle, counters);
  hub.nodeExtras = () => ({ webhook_queue: webhooks.queued() });
  await hub.start();
  const leaveCluster = async (): Promise<void> => {
    await hub.close();
    await cluster.claims.close();
    await cluster.rateLimiter.close();
  };
  return { ...cluster, hub, counters, webhooks, leaveCluster };
}
