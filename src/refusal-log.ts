import { CounterName } from './core/counters.js';
import type { Logger } from './log.js';

/**
 * Counters whose every step is a refusal an operator may need to diagnose, and what their log
 * line says. The others (messages dropped, idle connections closed, webhooks sent) are routine
 * and show in the metrics only; webhook failures are noted by the dispatcher itself, with the
 * target's URL and answer.
 */
const COUNTER_MESSAGES: Partial<Record<CounterName, string>> = {
  [CounterName.SlowConsumerCloses]: 'slow consumers closed: their send queue was full',
  [CounterName.ApiRequestsRateLimited]: 'HTTP API requests refused: rate limit reached',
  [CounterName.ClientMessagesRateLimited]: 'client messages refused: rate limit reached',
  [CounterName.ConnectionsRefusedRate]: 'connection attempts refused: per-IP attempt rate reached',
  [CounterName.ConnectionsRefusedIpLimit]: 'connections refused: per-IP connection limit reached',
  [CounterName.ConnectionsRefusedCapacity]: 'connections refused: this node is at maxConnections',
  [CounterName.ConnectionsRefusedQuota]: "connections refused: the app's maxConnections reached",
  [CounterName.AuthWebhookFailures]: 'connections refused: the auth webhook is failing',
};

/** HTTP API failures that are not the client's: a store that is down (Redis, JetStream), or a bug. */
export const HTTP_FAILED = 'HTTP API requests failed with 500 (is the cluster engine down?)';
/** WebSocket upgrades whose admission failed: a claim or rate-limit store that is down. */
export const UPGRADE_FAILED = 'WebSocket upgrades failed with 500 (is the cluster engine down?)';

/** Distinct (what, app) pairs held per period; past it, further apps are summed under OTHER_APPS. */
const MAX_PENDING = 1_000;
const OTHER_APPS = '*';

interface Pending {
  readonly message: string;
  readonly appId: string;
  count: number;
  /** The latest occurrence's details (an error, a status): one example is enough to diagnose. */
  fields: Record<string, unknown>;
}

/**
 * Refusals logged at most once per period per app and kind, with how many there were: a client
 * hammering a rate limit or an engine outage costs one line per period, not one per request.
 */
export class RefusalLog {
  private readonly pending = new Map<string, Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** Where the lines go; also for what is logged unthrottled beside the refusals. */
    readonly log: Logger,
    private readonly periodMs: number,
  ) {}

  /**
   * One or more refusals of kind `message` for `appId` ("" before the app is known); `about`
   * keeps apart what the same kind concerns (one webhook target from another).
   */
  note(appId: string, message: string, fields: Record<string, unknown> = {}, count = 1, about = ''): void {
    let key = `${message}\u0000${about}\u0000${appId}`;
    let entry = this.pending.get(key);
    if (!entry && this.pending.size >= MAX_PENDING) {
      key = `${message}\u0000${about}\u0000${OTHER_APPS}`;
      entry = this.pending.get(key);
    }
    if (entry) {
      entry.count += count;
      entry.fields = fields;
    } else {
      this.pending.set(key, { message, appId: this.pending.size >= MAX_PENDING ? OTHER_APPS : appId, count, fields });
    }
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), this.periodMs);
      this.timer.unref();
    }
  }

  /** For Counters: logs the steps of the counters that are refusals (see COUNTER_MESSAGES). */
  readonly noteCounter = (appId: string, name: CounterName, by: number, detail?: string): void => {
    const message = COUNTER_MESSAGES[name];
    if (message !== undefined) this.note(appId, message, detail === undefined ? {} : { detail }, by);
  };

  /** Writes what the period gathered, one line per app and kind. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const { message, appId, count, fields } of this.pending.values()) {
      this.log.warn({ ...fields, app: appId, count, periodMs: this.periodMs }, message);
    }
    this.pending.clear();
  }
}
