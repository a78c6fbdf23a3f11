/** Names of the per-app counters of refusals and losses; fixed, so a dashboard can rely on them. */
export const CounterName = {
  MessagesDropped: 'messages_dropped',
  SlowConsumerCloses: 'slow_consumer_closes',
  ConnectionsRefusedQuota: 'connections_refused_quota',
  ConnectionsRefusedCapacity: 'connections_refused_capacity',
  ConnectionsRefusedIpLimit: 'connections_refused_ip_limit',
  ConnectionsRefusedRate: 'connections_refused_rate',
  ConnectionsRefusedAuth: 'connections_refused_auth',
  ApiRequestsRateLimited: 'api_requests_rate_limited',
  ClientMessagesRateLimited: 'client_messages_rate_limited',
  IdleConnectionsClosed: 'idle_connections_closed',
  WebhooksSent: 'webhooks_sent',
  WebhookFailures: 'webhook_failures',
  WebhookEventsDropped: 'webhook_events_dropped',
  /** Of the dropped: refused because the app's durable queue was at its bound. */
  WebhookQueueFull: 'webhook_events_refused_queue_full',
  /** Given up after the last retry and kept as dead letters (durable queues). */
  WebhookEventsDeadLettered: 'webhook_events_dead_lettered',
  HookFailures: 'hook_failures',
  WebhookRetries: 'webhook_retries',
  AuthWebhookFailures: 'auth_webhook_failures',
} as const;

export type CounterName = (typeof CounterName)[keyof typeof CounterName];

/** In-memory counters per app on this node. Refusals that happen before an app is known count under "". */
export class Counters {
  private readonly byApp = new Map<string, Map<CounterName, number>>();

  /** `onIncrement` hears every step (the server logs the refusals among them, throttled). */
  constructor(private readonly onIncrement?: (appId: string, name: CounterName, by: number, detail?: string) => void) {}

  /** `detail`: what the listener may report of this occurrence (a cause, never a secret). */
  increment(appId: string, name: CounterName, by = 1, detail?: string): void {
    let counters = this.byApp.get(appId);
    if (!counters) this.byApp.set(appId, (counters = new Map<CounterName, number>()));
    counters.set(name, (counters.get(name) ?? 0) + by);
    this.onIncrement?.(appId, name, by, detail);
  }

  /** Every counter of the app, zeros included. */
  snapshot(appId: string): Record<CounterName, number> {
    const counters = this.byApp.get(appId);
    const out = {} as Record<CounterName, number>;
    for (const name of Object.values(CounterName)) out[name] = counters?.get(name) ?? 0;
    return out;
  }

  /** Every counter summed over all apps (and the app-less ""), zeros included. */
  totals(): Record<CounterName, number> {
    const out = this.snapshot('\u0000none');
    for (const counters of this.byApp.values()) for (const [name, n] of counters) out[name] += n;
    return out;
  }
}
