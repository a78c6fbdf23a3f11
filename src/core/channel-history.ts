import type { App } from './app.js';
import type { ChannelState } from './app-state.js';
import type { Connection } from './connection.js';
import { HistoryPolicy, reachesBack, type HistoryEntry, type HistoryLimits, type HistoryMessage, type HistoryStore, type Position } from './history.js';
import type { ChannelMessage } from './message.js';

type EventMessage = Extract<ChannelMessage, { kind: 'event' }>;

/** What a resuming subscriber is told before its replay. */
export interface ResumeOutcome {
  readonly recovered: boolean;
  /** The channel's newest position when the replay was read. */
  readonly position: Position;
}

/**
 * A connection catching up on one channel: live messages wait in `buffer` while its replay is
 * read, then, once it is live again, positioned messages up to `floor` (already replayed) are
 * skipped for it until the first one past the floor arrives.
 */
export interface Catching {
  buffer: ChannelMessage[] | null;
  epoch: string;
  floor: number;
}

/** Appends one channel may have waiting on this node; past it, publishes go out live without a position. */
const MAX_PENDING_APPENDS = 1000;

/** Live messages one resuming connection may buffer while its replay is read. */
const MAX_BUFFERED = 1000;

/** The hub's use of a history store: which channels keep history, appending, and replays. */
export class ChannelHistory {
  private readonly policies = new WeakMap<App, HistoryPolicy>();
  /**
   * A channel's appends in flight on this node (bounded), and the last of them: on a store that
   * does not order appends itself (JetStream, where racing appends retry and could swap two
   * publishes of one node), each waits for the one before, so offsets follow publish order.
   */
  private readonly tails = new Map<string, { tail: Promise<unknown>; pending: number }>();

  constructor(private readonly store: HistoryStore) {}

  /** The channel's limits, or null when it keeps no history (one cached look-up per channel). */
  limitsOf(app: App, channel: string): HistoryLimits | null {
    let policy = this.policies.get(app);
    if (!policy) {
      policy = new HistoryPolicy(app.history);
      this.policies.set(app, policy);
    }
    return policy.limitsOf(channel);
  }

  /** Stores the event and gives it its position. */
  async append(app: App, message: EventMessage, limits: HistoryLimits): Promise<EventMessage> {
    const entry: HistoryEntry = {
      event: message.event,
      data: typeof message.data === 'string' ? message.data : message.data.toString('base64'),
      ...(typeof message.data === 'string' ? {} : { binary: true }),
      ...(message.dataIsJson ? { dataIsJson: true } : {}),
      ...(message.userId === undefined ? {} : { userId: message.userId }),
    };
    const key = `${app.id}\u0000${message.channel}`;
    const run = () => this.store.append(app.id, message.channel, entry, limits);
    const queue = this.tails.get(key);
    // Publishes outrunning the store: not queued without bound; this one goes out live, unstored.
    if (queue && queue.pending >= MAX_PENDING_APPENDS) throw new Error(`over ${MAX_PENDING_APPENDS} appends waiting on ${message.channel}`);
    // Behind a failed append (store down or frozen) the queued ones fail at once, rather than
    // each waiting out its own timeout: live delivery is held up by one timeout, not one per message.
    const appended = queue && !this.store.ordersAppends ? queue.tail.then(run, () => Promise.reject(new Error('the append before failed'))) : run();
    const mine = queue ?? { tail: appended, pending: 0 };
    mine.tail = appended;
    mine.pending += 1;
    this.tails.set(key, mine);
    try {
      return { ...message, position: await appended };
    } finally {
      mine.pending -= 1;
      if (mine.pending === 0) this.tails.delete(key);
    }
  }

  read(...args: Parameters<HistoryStore['read']>): ReturnType<HistoryStore['read']> {
    return this.store.read(...args);
  }

  /**
   * Replays to `conn` what it missed on `ch` since `since`, then lets it go live with no gap and
   * no duplicate. `tell` runs first, with whether the history reached back.
   */
  async resume(app: App, conn: Connection, ch: ChannelState, since: Position | undefined, limits: HistoryLimits, tell: (outcome: ResumeOutcome) => void): Promise<void> {
    const catching: Catching = { buffer: [], epoch: '', floor: 0 };
    const all = (ch.catching ??= new Map());
    all.set(conn, catching);
    try {
      const page = await this.store.read(app.id, ch.name, since?.offset, limits.size, limits);
      const recovered = since !== undefined && reachesBack(page, since);
      tell({ recovered, position: { epoch: page.epoch, offset: page.top } });
      if (!ch.subscribers.has(conn)) return; // left while the history was read
      let floor = recovered ? since.offset : page.top;
      if (recovered) {
        for (const m of page.messages) {
          write(conn, toChannelMessage(ch.name, page.epoch, m));
          floor = m.offset;
        }
      }
      const buffered = catching.buffer ?? [];
      catching.buffer = null;
      catching.epoch = page.epoch;
      catching.floor = floor;
      for (const m of buffered) if (!isCovered(m, catching)) write(conn, m);
    } finally {
      // Failed (or left) before going live: what arrived meanwhile still goes out, without a replay.
      if (catching.buffer !== null) {
        all.delete(conn);
        if (ch.subscribers.has(conn)) for (const m of catching.buffer) write(conn, m);
      }
    }
  }
}

/** Delivery to a channel where some connections are catching up; the others get the plain fan-out. */
export function routeCatching(ch: ChannelState, message: ChannelMessage): Set<Connection> {
  const skip = new Set<Connection>();
  for (const [conn, c] of ch.catching!) {
    if (c.buffer !== null) {
      if (c.buffer.length < MAX_BUFFERED) c.buffer.push(message);
      skip.add(conn);
    } else if (isCovered(message, c)) skip.add(conn);
    else if (message.kind === 'event' && message.position !== undefined) ch.catching!.delete(conn); // past the replay: live from here
  }
  return skip;
}

function isCovered(m: ChannelMessage, c: Catching): boolean {
  return m.kind === 'event' && m.position !== undefined && m.position.epoch === c.epoch && m.position.offset <= c.floor;
}

function write(conn: Connection, message: ChannelMessage): void {
  const bytes = conn.wire.encode(message);
  if (bytes !== null) conn.write(bytes);
}

export function toChannelMessage(channel: string, epoch: string, m: HistoryMessage): EventMessage {
  return {
    kind: 'event',
    channel,
    event: m.event,
    data: m.binary ? Buffer.from(m.data, 'base64') : m.data,
    ...(m.dataIsJson ? { dataIsJson: true } : {}),
    ...(m.userId === undefined ? {} : { userId: m.userId }),
    position: { epoch, offset: m.offset },
  };
}
