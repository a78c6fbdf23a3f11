import { randomUUID } from 'node:crypto';
import type { App, WebhookTarget } from '../core/app.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { HubEvent } from '../core/hub-events.js';
import type { RefusalLog } from '../refusal-log.js';
import { laneCount, laneOf, targetAccepts } from './lanes.js';
import { DurableTarget, type DurableOptions } from './durable-target.js';
import { OncePerPeriod } from './once-per-period.js';
import type { DeadLetter, QueueEntry, WebhookQueue, WireEvent } from './queue.js';
import { FIRST_RETRY_MS, MAX_RETRY_MS, WebhookSender, backoff, type WebhookReport } from './sender.js';

export interface WebhookOptions {
  readonly batchMs: number;
  /** channel_vacated and member_removed wait this long, and are not sent if the channel or member comes back; 0 = at once. */
  readonly leaveDelayMs: number;
  readonly timeoutMs: number;
  readonly retryForMs: number;
  readonly maxQueue: number;
  readonly report?: WebhookReport;
}

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

/** One request at a time: what waits here is sent in the order it came. */
interface Lane {
  queued: QueueEntry[];
  sending: Promise<void> | undefined;
}

/**
 * One target's queue. As Pusher does by default, each request carries one event
 * (`{time_ms, events: [event]}`); a target with `batch` gets what gathered over `batchMs` in one
 * request instead. Bodies are signed with the app secret. A failing request is retried with
 * exponential backoff until `retryForMs`, then its events are dropped and counted.
 */
class TargetQueue implements Target {
  private readonly lanes: Lane[];
  /** Events waiting over all lanes. */
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Closing: failed requests are not retried any more. */
  private closed = false;
  /** End the retry backoffs under way early. */
  private readonly wakers = new Set<() => void>();
  /** Aborted when the shutdown's deadline has passed: no request may outlive the server. */
  private readonly stopper = new AbortController();
  private readonly sender: WebhookSender;

  constructor(
    private readonly app: App,
    private readonly target: WebhookTarget,
    private readonly options: WebhookOptions,
    private readonly counters: Counters,
    refusals: RefusalLog,
  ) {
    this.sender = new WebhookSender(app, target, options.timeoutMs, counters, refusals, options.report);
    this.lanes = Array.from({ length: laneCount(target) }, () => ({ queued: [], sending: undefined }));
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

  /** Events waiting for a request (not those of the request under way). */
  get depth(): number {
    return this.size;
  }

  accepts(event: HubEvent): boolean {
    return targetAccepts(this.target, event);
  }

  add(event: WireEvent): void {
    if (this.size >= this.options.maxQueue) this.dropOldest();
    const lane = this.lanes.length === 1 ? this.lanes[0] : this.lanes[laneOf(event.channel ?? '', this.lanes.length)];
    lane.queued.push({ id: randomUUID(), event, at: Date.now() });
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
      await this.deliver(taken);
    }
  }

  private async deliver(entries: readonly QueueEntry[]): Promise<void> {
    const giveUpAt = Date.now() + this.options.retryForMs;
    let wait = FIRST_RETRY_MS;
    for (;;) {
      if ((await this.sender.attempt(entries, this.stopper.signal)).ok) return;
      if (Date.now() + wait > giveUpAt || this.closed || this.stopper.signal.aborted) {
        this.counters.increment(this.app.id, CounterName.WebhookEventsDropped, entries.length);
        return;
      }
      this.counters.increment(this.app.id, CounterName.WebhookRetries);
      await backoff(wait, this.wakers);
      wait = Math.min(wait * 2, MAX_RETRY_MS);
    }
  }
}

/** What the dispatcher needs of a target, kept in memory (TargetQueue) or in a shared queue (DurableTarget). */
interface Target {
  /** Events waiting here for a request (a shared queue's are counted by the queue, not here). */
  readonly depth: number;
  accepts(event: HubEvent): boolean;
  add(event: WireEvent): void;
  close(): void;
  flush(): Promise<void>;
  stop(): void;
}

/** A queue that stays full, or an engine that stays away, is logged at most this often per app. */
const LOG_PERIOD_MS = 60_000;

/**
 * The same app read twice (a database store hands out a new object per read): its targets need
 * not be remade. Compared only when the objects differ, which happens once per read that changed.
 */
function sameApp(a: App, b: App): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
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
  /** Each app's queues, made on its first event (or at start), with the app they were made for. */
  private readonly queues = new Map<string, { app: App; queues: readonly Target[] }>();
  private readonly durable: WebhookQueue | undefined;
  private readonly targetFor: (app: App, target: WebhookTarget) => Target;
  private readonly heldLeaves = new Map<string, { appId: string; event: LeaveEvent; timer: NodeJS.Timeout }>();
  private readonly appById: (id: string) => App | undefined;

  constructor(
    /** The apps, or how to find one (apps in a database change while the server runs). */
    apps: readonly App[] | ((id: string) => App | undefined),
    private readonly options: WebhookOptions,
    counters: Counters,
    private readonly refusals: RefusalLog,
    private readonly stillLeft: StillLeft = () => true,
    durable?: { readonly queue: WebhookQueue; readonly options: DurableOptions },
  ) {
    this.durable = durable?.queue;
    const warnings = new OncePerPeriod(LOG_PERIOD_MS);
    this.targetFor = (app, target) =>
      durable ? new DurableTarget(app, target, durable.queue, durable.options, counters, refusals, warnings, options.report) : new TargetQueue(app, target, options, counters, refusals);
    if (typeof apps === 'function') this.appById = apps;
    else {
      const byId = new Map(apps.map((app) => [app.id, app]));
      this.appById = (id) => byId.get(id);
      // Made at start: with a shared queue this node delivers what other nodes queued, events of its own or not.
      for (const app of apps) this.queuesOf(app.id);
    }
  }

  /** Whether events outlive this node (a shared queue): only then are there dead letters to read and replay. */
  get keepsDeadLetters(): boolean {
    return this.durable !== undefined;
  }

  get queueHealthy(): boolean | undefined {
    return this.durable?.isHealthy;
  }

  /** The app's dead letters, oldest first. */
  deadLetters(appId: string, limit: number): Promise<DeadLetter[]> {
    return this.durable ? this.durable.deadLetters(appId, limit) : Promise.resolve([]);
  }

  /** Queues dead letters (the given ids, or all) for delivery again; how many were. */
  replay(appId: string, ids: readonly string[] | undefined): Promise<number> {
    return this.durable ? this.durable.replay(appId, ids) : Promise.resolve(0);
  }

  /** The hub's event listener: nothing to do for apps without webhooks. */
  readonly handle = (appId: string, event: HubEvent): void => {
    if (!this.appById(appId)?.webhooks.length) return;
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

  /**
   * Keeps the app's targets running on this node without waiting for an event of it: with a
   * shared queue, this node then delivers what other nodes queued (a database store's apps are
   * not known at start, so they are followed as they are found, changed and removed). Stops them
   * when the app is gone (undefined), disabled or without webhooks. Nothing to do in memory.
   */
  follow(appId: string, app: App | undefined): void {
    if (!this.durable) return;
    if (app?.enabled && app.webhooks.length > 0) this.queuesFor(appId, app);
    else this.queuesFor(appId, undefined);
  }

  /** Apps whose targets run on this node. */
  followed(): IterableIterator<string> {
    return this.queues.keys();
  }

  /** The app's queues, made anew when the app changed (targets, or the secret that signs them). */
  private queuesOf(appId: string): readonly Target[] {
    return this.queuesFor(appId, this.appById(appId));
  }

  private queuesFor(appId: string, app: App | undefined): readonly Target[] {
    const entry = this.queues.get(appId);
    if (entry && app && (entry.app === app || sameApp(entry.app, app))) {
      entry.app = app; // the next look-up is one comparison again
      return entry.queues;
    }
    if (entry) {
      // What the old queues hold still goes out, signed as it was when it was queued.
      for (const queue of entry.queues) {
        queue.close();
        queue.flush().then(
          () => queue.stop(),
          (err: unknown) => this.refusals.log.error({ err }, 'webhook flush failed'),
        );
      }
      this.queues.delete(appId);
    }
    if (!app?.enabled || app.webhooks.length === 0) return [];
    const queues = app.webhooks.map((target) => this.targetFor(app, target));
    this.queues.set(appId, { app, queues });
    return queues;
  }

  /** Events of the app waiting to be sent, over all its targets (read when metrics are scraped). */
  queueDepth(appId: string): number {
    let depth = 0;
    for (const queue of this.queues.get(appId)?.queues ?? []) depth += queue.depth;
    return depth;
  }

  /** Events waiting over every app (the dashboard's node overview). */
  queued(): number {
    let n = 0;
    for (const appId of this.queues.keys()) n += this.queueDepth(appId);
    return n;
  }

  private route(appId: string, event: HubEvent): void {
    let wire: WireEvent | undefined;
    for (const queue of this.queuesOf(appId)) if (queue.accepts(event)) queue.add((wire ??= toWire(event)));
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
    const all = [...this.queues.values()].flatMap((entry) => entry.queues);
    for (const queue of all) queue.close();
    let deadline: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(all.map((queue) => queue.flush())), new Promise((resolve) => (deadline = setTimeout(resolve, deadlineMs)))]);
    clearTimeout(deadline);
    for (const queue of all) queue.stop();
  }
}
