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

export type DebugListener = (appId: string, entry: DebugEntry) => void;

/** Longest payload text a console line carries. */
const MAX_DATA_CHARS = 2_048;

/**
 * Where the hub and the front-ends report what the debug console shows. Nobody watching is
 * the normal case, so every caller checks `watched` (one boolean) before building an entry.
 */
export class DebugTap {
  private readonly listeners = new Set<DebugListener>();
  /** True while at least one console is open on this node. */
  watched = false;

  constructor(private readonly node: string) {}

  listen(listener: DebugListener): () => void {
    this.listeners.add(listener);
    this.watched = true;
    return () => {
      this.listeners.delete(listener);
      this.watched = this.listeners.size > 0;
    };
  }

  emit(appId: string, entry: Omit<DebugEntry, 'at' | 'node'>): void {
    const data = entry.data !== undefined && entry.data.length > MAX_DATA_CHARS ? `${entry.data.slice(0, MAX_DATA_CHARS)}…` : entry.data;
    const full: DebugEntry = { ...entry, data, at: Date.now(), node: this.node };
    for (const listener of this.listeners) listener(appId, full);
  }
}
