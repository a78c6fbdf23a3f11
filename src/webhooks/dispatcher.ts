import type { App, WebhookTarget } from '../core/app.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { HubEvent } from '../core/hub-events.js';
import type { Logger } from '../log.js';
import { hmacSha256Hex } from '../util/hmac.js';

export interface WebhookOptions {
  readonly batchMs: number;
  /** channel_vacated and member_removed wait this long, and are not sent if the channel or member comes back; 0 = at once. */
  readonly leaveDelayMs: number;
  readonly timeoutMs: number;
  readonly retryForMs: number;
  readonly maxQueue: number;
}

/** Pusher's webhook event shape (wire names live here). */
type WireEvent = Record<string, string>;

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

function toWire(event: HubEvent): WireEvent {
  switch (event.name) {
    case 'member_added':
    case 'member_removed':
      return { name: event.name, channel: event.channel, user_id: event.userId };
    case 'client_event': {
      const out: WireEvent = { name: event.name, channel: event.channel, event: event.event, data: event.data, socket_id: event.socketId };
      if (event.userId !== undefined) out.user_id = event.userId;
      return out;
    }
    default:
      return { name: event.name, channel: event.channel };
  }
}

/**
 * One target's queue: events are batched for `batchMs` into `{time_ms, events}`, signed with
 * the app secret, and POSTed one batch at a time (so they arrive in order). A failing target is
 * retried with exponential backoff until `retryForMs`, then its batch is dropped and counted.
 */
class TargetQueue {
  private events: WireEvent[] = [];
  private firstAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;

  constructor(
    private readonly app: App,
    private readonly target: WebhookTarget,
    private readonly options: WebhookOptions,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {}

  /** Closing: failed batches are not retried any more. */
  private closed = false;
  /** Ends a retry backoff early (set while one is under way). */
  private wake: (() => void) | undefined;
  /** Aborted when the shutdown's deadline has passed: no request may outlive the server. */
  private readonly stopper = new AbortController();

  /** Stops retrying; a batch waiting out a backoff gets its last attempt now rather than after the wait. */
  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** Past the shutdown deadline: aborts the request under way and drops (and counts) what is left. */
  stop(): void {
    this.stopper.abort();
    if (this.events.length > 0) this.counters.increment(this.app.id, CounterName.WebhookEventsDropped, this.events.length);
    this.events = [];
  }

  accepts(event: HubEvent): boolean {
    if (this.target.events && !this.target.events.includes(event.name)) return false;
    return this.target.channelPrefix === undefined || event.channel.startsWith(this.target.channelPrefix);
  }

  add(event: WireEvent): void {
    if (this.events.length === 0) this.firstAt = Date.now();
    if (this.events.length >= this.options.maxQueue) {
      this.events.shift();
      this.counters.increment(this.app.id, CounterName.WebhookEventsDropped);
    }
    this.events.push(event);
    if (!this.timer && !this.sending) {
      this.timer = setTimeout(() => this.flush(), this.options.batchMs);
      this.timer.unref();
    }
  }

  /** Sends what is queued (and what queues meanwhile); resolves when the queue is empty or given up. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending) return this.sending;
    if (this.events.length === 0) return Promise.resolve();
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  private async drain(): Promise<void> {
    while (this.events.length > 0) {
      const events = this.events.splice(0, this.events.length);
      // time_ms is when the first event happened, not when the queue got round to sending it.
      const body = JSON.stringify({ time_ms: this.firstAt, events });
      this.firstAt = Date.now();
      await this.deliver(body, events.length);
    }
  }

  private async deliver(body: string, count: number): Promise<void> {
    const giveUpAt = Date.now() + this.options.retryForMs;
    let wait = FIRST_RETRY_MS;
    for (;;) {
      try {
        const response = await fetch(this.target.url, {
          method: 'POST',
          headers: {
            ...this.target.headers,
            'Content-Type': 'application/json',
            'X-Pusher-Key': this.app.key,
            'X-Pusher-Signature': hmacSha256Hex(this.app.secret, body),
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs), this.stopper.signal]),
          // A redirect would re-send the signed body to wherever the target points: not followed.
          redirect: 'manual',
        });
        await response.body?.cancel();
        if (response.ok) {
          this.counters.increment(this.app.id, CounterName.WebhooksSent);
          return;
        }
        this.log.warn({ app: this.app.id, url: this.target.url, status: response.status }, 'webhook refused');
      } catch (err) {
        this.log.warn({ app: this.app.id, url: this.target.url, err: (err as Error).message }, 'webhook failed');
      }
      this.counters.increment(this.app.id, CounterName.WebhookFailures);
      if (Date.now() + wait > giveUpAt || this.closed || this.stopper.signal.aborted) {
        this.counters.increment(this.app.id, CounterName.WebhookEventsDropped, count);
        return;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait).unref();
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    }
  }
}

type LeaveEvent = Extract<HubEvent, { name: 'channel_vacated' | 'member_removed' }>;

/**
 * Whether a held-back leave is still true when it is due. Another node may have seen the
 * channel or member come back, and only the cluster-wide state knows.
 */
export type StillLeft = (appId: string, event: LeaveEvent) => boolean;

type JoinOrLeave = Extract<HubEvent, { name: 'channel_occupied' | 'channel_vacated' | 'member_added' | 'member_removed' }>;

/** Shared by a leave and the join that cancels it: the channel's occupancy, or the user's membership. */
function leaveKey(appId: string, event: JoinOrLeave): string {
  return 'userId' in event ? `m\0${appId}\0${event.channel}\0${event.userId}` : `c\0${appId}\0${event.channel}`;
}

/**
 * Routes hub events to each app's webhook targets. Like Pusher, it holds channel_vacated and
 * member_removed back for `leaveDelayMs`: a page reload or a reconnect is a leave followed by a
 * join within a moment, and then neither is reported.
 */
export class WebhookDispatcher {
  private readonly queues = new Map<string, TargetQueue[]>();
  private readonly heldLeaves = new Map<string, { appId: string; event: LeaveEvent; timer: NodeJS.Timeout }>();

  constructor(
    apps: readonly App[],
    private readonly options: WebhookOptions,
    counters: Counters,
    log: Logger,
    private readonly stillLeft: StillLeft = () => true,
  ) {
    for (const app of apps) {
      if (app.webhooks.length > 0) this.queues.set(app.id, app.webhooks.map((target) => new TargetQueue(app, target, options, counters, log)));
    }
  }

  /** The hub's event listener: a map miss for apps without webhooks. */
  readonly handle = (appId: string, event: HubEvent): void => {
    if (!this.queues.has(appId)) return;
    if (this.options.leaveDelayMs > 0) {
      if (event.name === 'channel_vacated' || event.name === 'member_removed') return this.holdLeave(appId, event);
      if (event.name === 'channel_occupied' || event.name === 'member_added') {
        const key = leaveKey(appId, event);
        const held = this.heldLeaves.get(key);
        if (held) {
          // Back within the delay: for the backend nothing happened.
          clearTimeout(held.timer);
          this.heldLeaves.delete(key);
          return;
        }
      }
    }
    this.route(appId, event);
  };

  private route(appId: string, event: HubEvent): void {
    let wire: WireEvent | undefined;
    for (const queue of this.queues.get(appId) ?? []) if (queue.accepts(event)) queue.add((wire ??= toWire(event)));
  }

  private holdLeave(appId: string, event: LeaveEvent): void {
    const key = leaveKey(appId, event);
    clearTimeout(this.heldLeaves.get(key)?.timer);
    const timer = setTimeout(() => this.releaseLeave(key), this.options.leaveDelayMs);
    timer.unref();
    this.heldLeaves.set(key, { appId, event, timer });
  }

  private releaseLeave(key: string): void {
    const held = this.heldLeaves.get(key);
    if (!held) return;
    clearTimeout(held.timer);
    this.heldLeaves.delete(key);
    if (this.stillLeft(held.appId, held.event)) this.route(held.appId, held.event);
  }

  /** Sends held leaves and what is queued, one attempt per batch, within `deadlineMs`. */
  async close(deadlineMs: number): Promise<void> {
    for (const key of [...this.heldLeaves.keys()]) this.releaseLeave(key);
    const all = [...this.queues.values()].flat();
    for (const queue of all) queue.close();
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all.map((queue) => queue.flush())), new Promise((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    for (const queue of all) queue.stop();
  }
}
