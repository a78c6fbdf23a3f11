import { createHash, randomUUID } from 'node:crypto';
import type { App, WebhookTarget } from '../core/app.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { HubEvent } from '../core/hub-events.js';
import type { Logger } from '../log.js';
import type { RefusalLog } from '../refusal-log.js';
import { laneCount, laneOf, targetAccepts } from './lanes.js';
import type { Lease, WebhookQueue, WireEvent } from './queue.js';
import { FIRST_RETRY_MS, MAX_RETRY_MS, WebhookSender, backoff, type WebhookReport } from './sender.js';
import type { OncePerPeriod } from './once-per-period.js';

export interface DurableOptions {
  readonly batchMs: number;
  readonly timeoutMs: number;
  readonly retryForMs: number;
  /** How long a lane loop waits on an empty lane before asking again (pushes on this node wake it at once). */
  readonly pollMs: number;
  /** The queue's lease: extended every third of it while a request or a backoff is under way. */
  readonly leaseMs: number;
  /** Most events in one request of a batching target. */
  readonly maxBatch: number;
}

/** A target's name in the queue: stable over restarts and the same on every node (from its URL). */
export function targetKey(target: WebhookTarget): string {
  return createHash('sha256').update(target.url).digest('hex').slice(0, 16);
}

/**
 * One target over a shared queue. `add` stores the event (the hub is not held up: the push runs
 * on its own); each lane has a loop on every node that takes the lane's head under a lease,
 * sends it, and acknowledges it, so whichever node is alive delivers. A failing request is
 * retried with backoff (the lease kept alive meanwhile) until `retryForMs`, then its events
 * become dead letters. On shutdown a lease is given back, not dropped: another node sends it.
 */
export class DurableTarget {
  private readonly key: string;
  private readonly sender: WebhookSender;
  private readonly loops: Promise<void>[] = [];
  private readonly pushes = new Set<Promise<void>>();
  private closed = false;
  private readonly wakers = new Set<() => void>();
  private readonly stopper = new AbortController();

  private readonly log: Logger;
  /** What waits lives in the shared queue, counted there; none waits in this node's memory. */
  readonly depth = 0;

  constructor(
    private readonly app: App,
    private readonly target: WebhookTarget,
    private readonly queue: WebhookQueue,
    private readonly options: DurableOptions,
    private readonly counters: Counters,
    refusals: RefusalLog,
    private readonly warnings: OncePerPeriod,
    report?: WebhookReport,
  ) {
    this.log = refusals.log;
    this.key = targetKey(target);
    this.sender = new WebhookSender(app, target, options.timeoutMs, counters, refusals, report);
    for (let lane = 0; lane < laneCount(target); lane++) this.loops.push(this.run(lane));
  }

  accepts(event: HubEvent): boolean {
    return targetAccepts(this.target, event);
  }

  add(event: WireEvent): void {
    const lane = laneOf(event.channel ?? '', laneCount(this.target));
    const push = this.queue
      .push({ appId: this.app.id, target: this.key, lane }, { id: randomUUID(), event, at: Date.now() })
      .then(
        (result) => {
          if (result === 'queued') return;
          this.counters.increment(this.app.id, CounterName.WebhookEventsDropped);
          this.counters.increment(this.app.id, CounterName.WebhookQueueFull);
          this.warnings.warn(`full\0${this.app.id}`, (count) =>
            this.log.warn({ app: this.app.id, refused: count }, 'webhook queue full (webhookQueueMaxEntries / webhookQueueMaxBytes): new events refused'),
          );
        },
        (err: unknown) => {
          this.counters.increment(this.app.id, CounterName.WebhookEventsDropped);
          this.warnings.warn(`push\0${this.app.id}`, (count) =>
            this.log.warn({ app: this.app.id, lost: count, err: (err as Error).message }, 'webhook queue unreachable: events lost'),
          );
        },
      )
      .finally(() => this.pushes.delete(push));
    this.pushes.add(push);
  }

  private async run(lane: number): Promise<void> {
    const ref = { appId: this.app.id, target: this.key, lane };
    const max = this.target.batch ? this.options.maxBatch : 1;
    while (!this.closed) {
      let lease: Lease | undefined;
      try {
        // A batching target lets events gather for batchMs before each take.
        if (this.target.batch && this.options.batchMs > 0) await backoff(this.options.batchMs, this.wakers);
        if (this.closed) return;
        lease = await this.queue.take(ref, max, this.options.pollMs);
      } catch (err) {
        this.warnings.warn(`take\0${this.app.id}`, (count) =>
          this.log.warn({ app: this.app.id, failures: count, err: (err as Error).message }, 'webhook queue unreachable: delivery paused'),
        );
        if (!this.closed) await backoff(this.options.pollMs, this.wakers);
        continue;
      }
      if (lease) await this.deliver(lease);
    }
  }

  private async deliver(lease: Lease): Promise<void> {
    const keepAlive = setInterval(() => {
      lease.extend().catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'webhook lease not extended'));
    }, Math.max(1, Math.floor(this.options.leaseMs / 3)));
    keepAlive.unref();
    try {
      const giveUpAt = Date.now() + this.options.retryForMs;
      let wait = FIRST_RETRY_MS;
      for (;;) {
        const attempt = await this.sender.attempt(lease.entries, this.stopper.signal);
        if (attempt.ok) return await lease.ack();
        // Shutting down: the events stay queued for another node (or this one after its restart).
        if (this.closed) return await lease.release();
        if (Date.now() + wait > giveUpAt) {
          await lease.bury(Date.now(), attempt.reason);
          this.counters.increment(this.app.id, CounterName.WebhookEventsDeadLettered, lease.entries.length);
          this.log.warn({ app: this.app.id, url: this.sender.loggedUrl, events: lease.entries.length }, 'webhook given up: events moved to the dead letters');
          return;
        }
        await backoff(wait, this.wakers);
        wait = Math.min(wait * 2, MAX_RETRY_MS);
      }
    } catch (err) {
      // The queue failed us mid-way (ack or bury): the lease runs out and the events are taken again.
      this.log.warn({ app: this.app.id, err: (err as Error).message }, 'webhook queue failed while finishing a delivery; it will be retried');
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** Stops taking; a backoff under way ends now and gives its lease back. */
  close(): void {
    this.closed = true;
    for (const wake of this.wakers) wake();
  }

  /** Resolves when the pushes under way are stored and every lane loop has ended. */
  async flush(): Promise<void> {
    await Promise.all([...this.pushes]);
    await Promise.all(this.loops);
  }

  /** Past the shutdown deadline: aborts requests under way (their leases run out; nothing is dropped). */
  stop(): void {
    this.stopper.abort();
  }
}
