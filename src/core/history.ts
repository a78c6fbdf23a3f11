/**
 * Channel history: what a store keeps per channel, and the rules of resuming that every store
 * shares. A message on a history channel gets a position: an epoch naming one unbroken run of
 * the channel's history (a new one whenever it was lost: expired whole, or the store restarted)
 * and an offset that grows by one per message, the same on every node.
 */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** How much of a channel is kept: at most `size` messages, none older than `ttlSeconds`. */
export interface HistoryLimits {
  readonly size: number;
  readonly ttlSeconds: number;
}

/** A published event as history keeps it (text; binary payloads as base64 with `binary`). */
export interface HistoryEntry {
  readonly event: string;
  readonly data: string;
  readonly binary?: boolean;
  readonly dataIsJson?: boolean;
  readonly userId?: string;
}

export interface HistoryMessage extends HistoryEntry {
  readonly offset: number;
  /** Epoch ms when it was appended. */
  readonly at: number;
}

/**
 * One read of a channel's history. `top` is the newest offset (0 when nothing was ever kept in
 * this epoch); `oldest` the oldest offset still kept (top + 1 when none is).
 */
export interface HistoryPage {
  readonly epoch: string;
  readonly top: number;
  readonly oldest: number;
  /** Kept messages after the asked offset, oldest first, at most `limit`. */
  readonly messages: readonly HistoryMessage[];
}

/**
 * Where history lives. Stores follow the cluster engine (memory, Redis, JetStream) so that a
 * position means the same on every node. `append` is the one place offsets are given out.
 */
export interface HistoryStore {
  /**
   * True when appends to one channel issued one after another get offsets in that order even
   * while earlier ones are in flight (memory; Redis, whose commands on one connection run in
   * order). Otherwise (JetStream, where racing appends retry) the hub waits for each append of
   * a channel before the next.
   */
  readonly ordersAppends: boolean;
  append(appId: string, channel: string, entry: HistoryEntry, limits: HistoryLimits): Promise<Position>;
  /**
   * Messages with offsets above `after` (all kept ones when undefined), oldest first; with
   * `newest`, the last `limit` of them instead of the first.
   */
  read(appId: string, channel: string, after: number | undefined, limit: number, limits: HistoryLimits, newest?: boolean): Promise<HistoryPage>;
  close(): Promise<void>;
}

/**
 * Whether a client that last saw `since` can be brought up to date from `page` without a gap:
 * same epoch, not ahead of the channel, and nothing after it has been dropped.
 */
export function reachesBack(page: HistoryPage, since: Position): boolean {
  return since.epoch === page.epoch && since.offset <= page.top && since.offset >= page.oldest - 1;
}

/** An app's history rule: channel names matching `channels` (a `*` matches any run) keep history. */
export interface HistoryRule extends HistoryLimits {
  readonly channels: string;
}

/**
 * An app's rules, compiled once. Answers per channel name are cached (bounded), so a channel
 * costs one pattern match, and a channel without history nothing more.
 */
export class HistoryPolicy {
  private readonly compiled: readonly { readonly pattern: RegExp; readonly limits: HistoryLimits }[];
  private readonly cache = new Map<string, HistoryLimits | null>();

  constructor(
    rules: readonly HistoryRule[],
    private readonly cacheSize = 10_000,
  ) {
    this.compiled = rules.map((r) => ({ pattern: globToRegExp(r.channels), limits: { size: r.size, ttlSeconds: r.ttlSeconds } }));
  }

  get isEmpty(): boolean {
    return this.compiled.length === 0;
  }

  /** The limits of the first rule matching the channel, or null when it keeps no history. */
  limitsOf(channel: string): HistoryLimits | null {
    if (this.compiled.length === 0) return null;
    const hit = this.cache.get(channel);
    if (hit !== undefined) return hit;
    const found = this.compiled.find((c) => c.pattern.test(channel))?.limits ?? null;
    if (this.cache.size >= this.cacheSize) this.cache.clear(); // bounded; refilled on demand
    this.cache.set(channel, found);
    return found;
  }
}

function globToRegExp(glob: string): RegExp {
  const escaped = glob.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`);
}

/** Keeps the offsets of `messages` above `after`, first or last `limit` of them. */
export function pageOf(epoch: string, top: number, kept: readonly HistoryMessage[], after: number | undefined, limit: number, newest = false): HistoryPage {
  const oldest = kept.length > 0 ? kept[0].offset : top + 1;
  const wanted = after === undefined ? kept : kept.filter((m) => m.offset > after);
  const messages = newest ? wanted.slice(Math.max(0, wanted.length - limit)) : wanted.slice(0, limit);
  return { epoch, top, oldest, messages };
}
