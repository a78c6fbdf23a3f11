import type { AppRegistry } from '../apps/registry.js';
import type { AppResolver } from '../apps/resolver.js';
import { createCluster, type ClusterParts } from '../cluster/create.js';
import type { Config } from '../config/schema.js';
import { Counters } from '../core/counters.js';
import { Hub } from '../core/hub.js';
import type { Logger } from '../log.js';
import { createWebhookQueue } from '../webhooks/create-queue.js';
import { WebhookDispatcher } from '../webhooks/dispatcher.js';
import type { Reporting } from './reporting.js';

/** Most events in one request of a batching target on a durable queue. */
const WEBHOOK_MAX_BATCH = 100;

export interface HubParts extends ClusterParts {
  readonly hub: Hub;
  readonly counters: Counters;
  readonly webhooks: WebhookDispatcher;
  /** Leaves the cluster (the others drop this node's share at once) and closes the engine's stores. */
  readonly leaveCluster: () => Promise<void>;
}

/** Joins the cluster engine the config names and starts the hub on it, with its webhooks and counters. */
export async function buildHub(config: Config, apps: AppRegistry, log: Logger, reporting: Reporting, resolver?: AppResolver): Promise<HubParts> {
  const { refusals } = reporting;
  // Before the cluster: a queue that cannot connect then leaves no engine connections behind.
  const webhookQueue = await createWebhookQueue(config);
  const cluster = await createCluster(config, log, { stats: reporting.cluster, refusals });
  // Each step of a counter that is a refusal goes to the throttled log too.
  const counters = new Counters(refusals.noteCounter);
  const webhooks: WebhookDispatcher = new WebhookDispatcher(
    // Apps of the config file are known at start (a durable queue's targets then run on every node at once).
    config.appStore === 'config' ? config.apps : (id) => apps.cachedById(id),
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
    refusals,
    // Called later, when a held-back leave is due; the hub exists by then.
    (appId, event): boolean =>
      event.name === 'channel_vacated' ? !hub.channelInfo(appId, event.channel).occupied : !hub.isMember(appId, event.channel, event.userId),
    webhookQueue && {
      queue: webhookQueue,
      options: {
        batchMs: config.webhookBatchMs,
        timeoutMs: config.webhookTimeoutMs,
        retryForMs: config.webhookRetryForMs,
        pollMs: config.webhookQueuePollMs,
        leaseMs: config.webhookQueueLeaseMs,
        maxBatch: WEBHOOK_MAX_BATCH,
      },
    },
  );
  // A change made through another node's admin API: re-read the app now.
  const hub: Hub = new Hub(cluster.bus, (id) => apps.cachedById(id), Date.now, webhooks.handle, counters, (appId) => {
    resolver?.invalidate(appId).catch((err: unknown) => log.error({ err, app: appId }, 'could not re-read a changed app'));
  }, cluster.history);
  resolver?.start({
    onChange: (app) => hub.updateApp(app, app.id),
    onRemoved: (id) => hub.updateApp(undefined, id),
    inUse: (id) => !hub.connections(id).next().done,
  });
  hub.nodeExtras = () => ({ webhook_queue: webhooks.queued() });
  await hub.start();
  const leaveCluster = async (): Promise<void> => {
    await webhookQueue?.close();
    resolver?.stop();
    await hub.close();
    await cluster.claims.close();
    await cluster.rateLimiter.close();
    await cluster.history.close();
    await cluster.idempotency.close();
  };
  return { ...cluster, hub, counters, webhooks, leaveCluster };
}
