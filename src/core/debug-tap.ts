/** One line of an app's debug console (Pusher's "debug console"): what happened, to whom, when. */
export interface DebugEntry {
  /** Epoch ms. */
  readonly at: number;
  readonly node: string;
  readonly type:
    | 'connection_opened'
    | 'connection_closed'
    | 'subscribed'
    | 'unsubscribed'
    | 'api_message'
    | 'client_event'
    | 'webhook_sent'
    | 'webhook_failed';
  readonly socketId?: string | undefined;
  readonly channel?: string | undefined;
  readonly event?: string | undefined;
  /** Payload text, cut to a few KB: a console line, not a copy of the traffic. */
  readonly data?: string | undefined;
  readonly code?: number | undefined;
  readonly detail?: string | undefined;
}

export type DebugListener = (entry: DebugEntry) => void;

/** The cluster commands of the console: a node's watched apps, and lines for them. */
export type ConsoleCommand =
  /** `node` watches `appIds` (all of them: the list replaces the last one) for `ttlMs` unless renewed. */
  | { readonly kind: 'console-watch'; readonly node: string; readonly appIds: readonly string[]; readonly ttlMs: number }
  /** Lines from `node` for apps another node watches; `dropped` lines did not fit since the last batch. */
  | { readonly kind: 'console-entries'; readonly node: string; readonly entries: ReadonlyArray<{ readonly appId: string; readonly entry: DebugEntry }>; readonly dropped: number };

/** Longest payload text a console line carries. */
const MAX_DATA_CHARS = 2_048;
/** A watch lasts this long unless renewed: a node that dies stops being fed soon after. */
export const WATCH_TTL_MS = 15_000;
const WATCH_RENEW_MS = 5_000;
/** Lines for other nodes are sent in batches this often… */
const FORWARD_EVERY_MS = 100;
/** …of at most this many; more in one interval are dropped (and counted). */
const MAX_FORWARD_BATCH = 500;

/**
 * Where the hub and the front-ends report what the debug console shows, cluster-wide. Nobody
 * watching anywhere is the normal case, so every caller checks `watched` (one boolean) before
 * building an entry. A node with an open console announces the apps it watches over the cluster
 * engine, with an expiry it renews; only while such an announcement is live does another node
 * forward that app's lines to it, in bounded batches.
 */
export class DebugTap {
  private readonly local = new Map<string, Set<DebugListener>>();
  /** Other nodes' watched apps, each with the time its announcement runs out. */
  private readonly remote = new Map<string, { readonly appIds: ReadonlySet<string>; readonly expiresAt: number }>();
  private remoteApps = new Set<string>();
  private outbox: Array<{ appId: string; entry: DebugEntry }> = [];
  private dropped = 0;
  private forwardTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** True while a console is open on this node, or another node watches an app. */
  watched = false;

  constructor(
    private readonly node: string,
    /** Runs a command on every node; resolves when they answered (or the bus gave up waiting). */
    private readonly request: (command: ConsoleCommand) => Promise<unknown>,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A console opens: `listener` hears the app's lines from every node. `ready` resolves once
   * the other nodes have heard of it (their lines flow from then on).
   */
  listen(appId: string, listener: DebugListener): { readonly ready: Promise<void>; stop(): void } {
    let set = this.local.get(appId);
    const isNewApp = !set;
    if (!set) this.local.set(appId, (set = new Set()));
    set.add(listener);
    this.recount();
    const ready = isNewApp ? this.announce() : Promise.resolve();
    if (!this.renewTimer) {
      this.renewTimer = setInterval(() => void this.announce(), WATCH_RENEW_MS);
      this.renewTimer.unref();
    }
    return {
      ready,
      stop: () => {
        if (!set.delete(listener) || set.size > 0) return;
        this.local.delete(appId);
        this.recount();
        if (this.local.size === 0) {
          clearInterval(this.renewTimer);
          this.renewTimer = undefined;
        }
        void this.announce();
      },
    };
  }

  emit(appId: string, entry: Omit<DebugEntry, 'at' | 'node'>): void {
    const data = entry.data !== undefined && entry.data.length > MAX_DATA_CHARS ? `${entry.data.slice(0, MAX_DATA_CHARS)}…` : entry.data;
    const full: DebugEntry = { ...entry, data, at: this.now(), node: this.node };
    this.deliver(appId, full);
    if (this.remoteApps.has(appId)) this.forward(appId, full);
  }

  /** A console command from any node (this one's own included, which it ignores). */
  receive(command: ConsoleCommand): void {
    if (command.node === this.node) return;
    if (command.kind === 'console-entries') {
      for (const { appId, entry } of command.entries) this.deliver(appId, entry);
      return;
    }
    if (command.appIds.length === 0) this.remote.delete(command.node);
    else this.remote.set(command.node, { appIds: new Set(command.appIds), expiresAt: this.now() + command.ttlMs });
    this.sweep();
  }

  /** Stops the timers (the hub is closing). */
  close(): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.forwardTimer);
    clearTimeout(this.expiryTimer);
    this.renewTimer = this.forwardTimer = this.expiryTimer = undefined;
  }

  private deliver(appId: string, entry: DebugEntry): void {
    const listeners = this.local.get(appId);
    if (listeners) for (const listener of listeners) listener(entry);
  }

  private announce(): Promise<void> {
    return this.request({ kind: 'console-watch', node: this.node, appIds: [...this.local.keys()], ttlMs: WATCH_TTL_MS }).then(
      () => undefined,
      () => undefined,
    );
  }

  private forward(appId: string, entry: DebugEntry): void {
    if (this.outbox.length >= MAX_FORWARD_BATCH) {
      this.dropped += 1;
      return;
    }
    this.outbox.push({ appId, entry });
    if (this.forwardTimer) return;
    this.forwardTimer = setTimeout(() => {
      this.forwardTimer = undefined;
      const entries = this.outbox;
      const dropped = this.dropped;
      this.outbox = [];
      this.dropped = 0;
      // Fire and forget: a console line is not worth waiting for, nor retrying.
      this.request({ kind: 'console-entries', node: this.node, entries, dropped }).catch(() => undefined);
    }, FORWARD_EVERY_MS);
    this.forwardTimer.unref();
  }

  /** Forgets announcements that ran out, and wakes up again when the next one does. */
  private sweep(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    const now = this.now();
    let next = Infinity;
    for (const [node, watch] of this.remote) {
      if (watch.expiresAt <= now) this.remote.delete(node);
      else next = Math.min(next, watch.expiresAt);
    }
    this.remoteApps = new Set([...this.remote.values()].flatMap((w) => [...w.appIds]));
    this.recount();
    if (next !== Infinity) {
      this.expiryTimer = setTimeout(() => this.sweep(), next - now);
      this.expiryTimer.unref();
    }
  }

  private recount(): void {
    this.watched = this.local.size > 0 || this.remoteApps.size > 0;
  }
}
