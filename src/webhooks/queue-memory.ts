import { encodeEntry, type DeadLetter, type LaneRef, type Lease, type PushResult, type QueueEntry, type QueueLimits, type WebhookQueue } from './queue.js';

interface MemoryLane {
  readonly entries: QueueEntry[];
  /** Lease holder token and when it runs out. */
  lease: { token: object; until: number } | undefined;
  readonly waiters: Set<() => void>;
}

interface MemoryApp {
  readonly lanes: Map<string, MemoryLane>;
  entries: number;
  bytes: number;
  readonly dead: DeadLetter[];
}

/**
 * The queue in this process: what a node holds is lost with it. Same contract as the shared
 * queues (leases, bounds, dead letters), so the dispatcher and the tests treat them alike.
 */
export class MemoryWebhookQueue implements WebhookQueue {
  readonly name = 'memory';
  readonly isHealthy = true;
  private readonly apps = new Map<string, MemoryApp>();

  constructor(private readonly limits: QueueLimits) {}

  private app(appId: string): MemoryApp {
    let app = this.apps.get(appId);
    if (!app) this.apps.set(appId, (app = { lanes: new Map(), entries: 0, bytes: 0, dead: [] }));
    return app;
  }

  private lane(ref: LaneRef): MemoryLane {
    const lanes = this.app(ref.appId).lanes;
    const key = `${ref.target}\0${ref.lane}`;
    let lane = lanes.get(key);
    if (!lane) lanes.set(key, (lane = { entries: [], lease: undefined, waiters: new Set() }));
    return lane;
  }

  push(ref: LaneRef, entry: QueueEntry): Promise<PushResult> {
    const app = this.app(ref.appId);
    const bytes = Buffer.byteLength(encodeEntry(entry));
    if (app.entries + 1 > this.limits.maxEntries || app.bytes + bytes > this.limits.maxBytes) return Promise.resolve('full');
    const lane = this.lane(ref);
    lane.entries.push(entry);
    app.entries += 1;
    app.bytes += bytes;
    for (const wake of lane.waiters) wake();
    return Promise.resolve('queued');
  }

  async take(ref: LaneRef, max: number, waitMs: number): Promise<Lease | undefined> {
    const lane = this.lane(ref);
    const free = (): boolean => lane.entries.length > 0 && (!lane.lease || lane.lease.until <= Date.now());
    if (!free() && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer);
          lane.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, waitMs);
        lane.waiters.add(wake);
      });
    }
    if (!free()) return undefined;
    const token = {};
    lane.lease = { token, until: Date.now() + this.limits.leaseMs };
    const entries = lane.entries.slice(0, max);
    const holds = (): boolean => lane.lease?.token === token && lane.lease.until > Date.now();
    const remove = (): void => {
      // Entries leave only if they are still the head: a lease that ran out may have let another taker finish them.
      if (lane.entries[0]?.id !== entries[0]?.id) return;
      lane.entries.splice(0, entries.length);
      const app = this.app(ref.appId);
      app.entries -= entries.length;
      for (const entry of entries) app.bytes -= Buffer.byteLength(encodeEntry(entry));
    };
    const end = (): void => {
      if (lane.lease?.token === token) lane.lease = undefined;
      for (const wake of lane.waiters) wake();
    };
    return {
      entries,
      extend: () => {
        if (!holds()) return Promise.resolve(false);
        lane.lease = { token, until: Date.now() + this.limits.leaseMs };
        return Promise.resolve(true);
      },
      ack: () => {
        if (holds()) remove();
        end();
        return Promise.resolve();
      },
      release: () => {
        end();
        return Promise.resolve();
      },
      bury: (failedAt, reason) => {
        if (holds()) {
          remove();
          this.addDead(ref, entries, failedAt, reason);
        }
        end();
        return Promise.resolve();
      },
    };
  }

  private addDead(ref: LaneRef, entries: readonly QueueEntry[], failedAt: number, reason: string): void {
    const dead = this.app(ref.appId).dead;
    for (const entry of entries) dead.push({ ...entry, target: ref.target, lane: ref.lane, failedAt, reason });
    if (dead.length > this.limits.maxDeadLetters) dead.splice(0, dead.length - this.limits.maxDeadLetters);
  }

  deadLetters(appId: string, limit: number): Promise<DeadLetter[]> {
    return Promise.resolve(this.app(appId).dead.slice(0, limit));
  }

  async replay(appId: string, ids: readonly string[] | undefined): Promise<number> {
    const wanted = ids ? new Set(ids) : undefined;
    const app = this.app(appId);
    let moved = 0;
    for (const dead of [...app.dead]) {
      if (wanted && !wanted.has(dead.id)) continue;
      const { id, event, at } = dead;
      if ((await this.push({ appId, target: dead.target, lane: dead.lane }, { id, event, at })) === 'full') continue;
      app.dead.splice(app.dead.indexOf(dead), 1);
      moved += 1;
    }
    return moved;
  }

  close(): Promise<void> {
    for (const app of this.apps.values()) for (const lane of app.lanes.values()) for (const wake of lane.waiters) wake();
    return Promise.resolve();
  }
}
