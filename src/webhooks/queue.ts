/**
 * Where webhook events wait for their target. A queue holds, per app, per target and per lane,
 * the events in the order they were pushed. A node takes the head of a lane under a lease: while
 * it holds the lease no other node (or loop) may take that lane, so a lane's events go out one
 * request at a time, in order. A lease that is not extended runs out, and then any node takes
 * the same events again, with the same ids: delivery is at least once. Implementations: memory
 * (one process), Redis / Redis Cluster and NATS JetStream (shared by the nodes, kept when one dies).
 */

/** Pusher's webhook event shape (wire names live here). */
export type WireEvent = Record<string, string>;

export interface QueueEntry {
  /** Stable over retries, redeliveries and replays: receivers drop duplicates by it. */
  readonly id: string;
  readonly event: WireEvent;
  /** When the event happened (the request body's `time_ms`). */
  readonly at: number;
}

/** Names one lane: the app, the target (a stable key derived from its URL) and the lane number. */
export interface LaneRef {
  readonly appId: string;
  readonly target: string;
  readonly lane: number;
}

/** An event given up after its last retry, kept for an operator to read and replay. */
export interface DeadLetter extends QueueEntry {
  readonly target: string;
  readonly lane: number;
  /** Epoch ms when it was given up. */
  readonly failedAt: number;
  /** Why the last attempt failed (a status or an error message; never the URL). */
  readonly reason: string;
}

export interface Lease {
  /** The lane's oldest entries, in order (at least one). */
  readonly entries: readonly QueueEntry[];
  /** Keeps the lease for another lease period; false when it was lost (another node may have the entries). */
  extend(): Promise<boolean>;
  /** Delivered: the entries leave the queue. */
  ack(): Promise<void>;
  /** Not delivered now: the lease ends and the entries are taken again (here or by another node). */
  release(): Promise<void>;
  /** Given up: the entries move to the app's dead letters (capped) and leave the queue. */
  bury(failedAt: number, reason: string): Promise<void>;
}

export type PushResult = 'queued' | 'full';

export interface QueueLimits {
  /** Events waiting per app, over all its targets and lanes. */
  readonly maxEntries: number;
  /** Bytes of events waiting per app (their stored JSON). */
  readonly maxBytes: number;
  /** Dead letters kept per app; beyond it the oldest go. */
  readonly maxDeadLetters: number;
  /** A taken lane not extended within this long may be taken by another node. */
  readonly leaseMs: number;
}

export interface WebhookQueue {
  readonly name: string;
  /** Connected to its engine (pushes made now are stored); /ready tells it. */
  readonly isHealthy: boolean;
  /** Appends to a lane; 'full' when the app's bound (entries or bytes) would be passed: nothing is stored then. */
  push(ref: LaneRef, entry: QueueEntry): Promise<PushResult>;
  /**
   * The head of a lane (up to `max` entries) under a lease, or undefined when the lane is empty
   * or leased elsewhere. May wait a short, bounded while (at most `waitMs`) for entries to come.
   */
  take(ref: LaneRef, max: number, waitMs: number): Promise<Lease | undefined>;
  /** The app's dead letters, oldest first, at most `limit`. */
  deadLetters(appId: string, limit: number): Promise<DeadLetter[]>;
  /**
   * Moves dead letters (those with the given ids, or all) back to the end of their lanes, within
   * the app's bound; returns how many moved. One that does not fit stays a dead letter.
   */
  replay(appId: string, ids: readonly string[] | undefined): Promise<number>;
  close(): Promise<void>;
}

/** The byte size an entry counts for against the bound: its JSON. */
export function encodeEntry(entry: QueueEntry): string {
  return JSON.stringify({ id: entry.id, event: entry.event, at: entry.at });
}

export function decodeEntry(text: string): QueueEntry {
  const parsed = JSON.parse(text) as QueueEntry;
  return { id: parsed.id, event: parsed.event, at: parsed.at };
}

export function encodeDeadLetter(dead: DeadLetter): string {
  return JSON.stringify({ id: dead.id, event: dead.event, at: dead.at, target: dead.target, lane: dead.lane, failedAt: dead.failedAt, reason: dead.reason });
}

export function decodeDeadLetter(text: string): DeadLetter {
  const p = JSON.parse(text) as DeadLetter;
  return { id: p.id, event: p.event, at: p.at, target: p.target, lane: p.lane, failedAt: p.failedAt, reason: p.reason };
}
