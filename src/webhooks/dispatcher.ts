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
  /** Hears each request's outcome (the debug console); `detail` holds no secret or URL. */
  readonly report?: (appId: string, sent: boolean, detail: string) => void;
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

/** An event waiting for its request, with the time it happened (the body's `time_ms`). */
interface Queued {
  readonly event: WireEvent;
  readonly at: number;
}

/** One request at a time: what waits here is sent in the order it came. */
interface Lane {
  queued: Queued[];
  sending: Promise<void> | undefined;
}

/**
 * Without batching, how many requests one target may have under way. A channel's events always
 * take the same lane, so they arrive in order; other channels need not wait behind them.
 */
const UNBATCHED_LANES = 8;

/** Spreads channels over the lanes (FNV-1a): stable, so one channel keeps one lane. */
function laneOf(channel: string, lanes: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) h = Math.imul(h ^ channel.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/**
 * One target's queue. As Pusher does by default, each request carries one event
 * (`{time_ms, events: [event]}`); a target with `batch` gets what gathered over `batchMs` in one
 * request instead. Bodies are signed with the app secret. A failing request is retried with
 * exponential backoff until `retryForMs`, then its events are dropped and counted.
 */
class TargetQueue {
  private readonly lanes: Lane[];
  /** Events waiting over all lanes (read by the dashboard's webhook queue). */
  size = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Closing: failed requests are not retried any more. */
  private closed = false;
  /** End the retry backoffs under way early. */
  private readonly wakers = new Set<() => void>();
  /** Aborted when the shutdown's deadline has passed: no request may outlive the server. */
  private readonly stopper = new AbortController();
  /** The target without its query string, which may carry a token. */
  private readonly loggedUrl: string;

  constructor(
    private readonly app: App,
    private readonly target: WebhookTarget,
    private readonly options: WebhookOptions,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {
    const url = new URL(target.url);
    this.loggedUrl = url.origin + url.pathname;
    this.lanes = Array.from({ length: target.batch ? 1 : UNBATCHED_LANES }, () => ({ queued: [], sending: undefined }));
  }

  /** Stops retrying; a request waiting out a backoff gets its last attempt now rather than after the wait. */
  close(): void {
    this.closed = true;
    for (const wake of this.wakers) wake();
  }

  /** Past the shutdown deadline: aborts the requests under way and drops (and counts) what is left. */
  stop(): void {
    this.stopper.abort();
    if (this.size > 0) this.counters.increment(this.app.id, CounterName.WebhookEventsDropped, this.size);
    for (const lane of this.lanes) lane.queued = [];
    this.size = 0;
  }

  accepts(event: HubEvent): boolean {
    if (this.target.events && !this.target.events.includes(event.name)) return false;
    const { channelPrefix, channelSuffix } = this.target;
    return (channelPrefix === undefined || event.channel.startsWith(channelPrefix)) && (channelSuffix === undefined || event.channel.endsWith(channelSuffix));
  }

  add(event: WireEvent): void {
    if (this.size >= this.options.maxQueue) this.dropOldest();
    const lane = this.lanes.length === 1 ? this.lanes[0] : this.lanes[laneOf(event.channel ?? '', this.lanes.length)];
    (lane).queued.push({ event, at: Date.now() });
    this.size += 1;
    if (!this.timer) {
      // Batches gather for batchMs; single events go on the next turn, after the hub's own work.
      this.timer = setTimeout(() => void this.flush(), this.target.batch ? this.options.batchMs : 0);
      this.timer.unref();
    }
  }

  /** Full: the oldest event of the longest lane goes (the one most behind). */
  private dropOldest(): void {
    let longest = this.lanes[0];
    for (const lane of this.lanes) if (lane.queued.length > longest.queued.length) longest = lane;
    longest.queued.shift();
    this.size -= 1;
    this.counters.increment(this.app.id, CounterName.WebhookEventsDropped);
  }

  /** Sends what is queued (and what queues meanwhile); resolves when every lane is empty or given up. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    return Promise.all(this.lanes.map((lane) => this.flushLane(lane))).then(() => undefined);
  }

  private flushLane(lane: Lane): Promise<void> {
    if (lane.sending) return lane.sending;
    if (lane.queued.length === 0) return Promise.resolve();
    lane.sending = this.drain(lane).finally(() => {
      lane.sending = undefined;
    });
    return lane.sending;
  }

  private async drain(lane: Lane): Promise<void> {
    while (lane.queued.length > 0) {
      const taken = lane.queued.splice(0, this.target.batch ? lane.queued.length : 1);
      this.size -= taken.length;
      // time_ms is when the (first) event happened, not when the queue got round to sending it.
      const body = JSON.stringify({ time_ms: (taken[0]).at, events: taken.map((q) => q.event) });
      await this.deliver(body, taken.length);
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
          this.options.report?.(this.app.id, true, `${count} event(s), HTTP ${response.status}`);
          return;
        }
        this.options.report?.(this.app.id, false, `HTTP ${response.status}`);
        this.log.warn({ app: this.app.id, url: this.loggedUrl, status: response.status }, 'webhook refused');
      } catch (err) {
        this.options.report?.(this.app.id, false, (err as Error).message);
        this.log.warn({ app: this.app.id, url: this.loggedUrl, err: (err as Error).message }, 'webhook failed');
      }
      this.counters.increment(this.app.id, CounterName.WebhookFailures);
      if (Date.now() + wait > giveUpAt || this.closed || this.stopper.signal.aborted) {
        this.counters.increment(this.app.id, CounterName.WebhookEventsDropped, count);
        return;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, wait).unref();
        this.wakers.add(wake);
      });
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

  /** Events waiting over every target. */
  queued(): number {
    let n = 0;
    for (const queues of this.queues.values()) for (const q of queues) n += q.size;
    return n;
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
