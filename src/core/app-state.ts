import type { Catching } from './channel-history.js';
import type { ChannelKind } from './channels.js';
import type { Connection, SocketId } from './connection.js';
import type { ChannelMessage } from './message.js';
import type { Sequencer } from './sequencer.js';
import { NodeTally } from './tally.js';

/** What this node published and delivered for one app (monotonic, for metrics). */
export interface Traffic {
  /** Messages published from this node (HTTP API, client events, embedding). */
  published: number;
  /** Frames handed to this node's connections. */
  delivered: number;
  deliveredBytes: number;
}

export const NO_TRAFFIC: Readonly<Traffic> = { published: 0, delivered: 0, deliveredBytes: 0 };
export const NO_CONNECTIONS: ReadonlySet<Connection> = new Set();

/** This node's subscribers of one channel. */
export class ChannelState {
  readonly subscribers = new Set<Connection>();
  /** Presence only: which user each socket joined as, and how many sockets each user has here. */
  readonly memberOf: Map<Connection, string> | undefined;
  readonly localSockets: Map<string, number> | undefined;
  countTimer: NodeJS.Timeout | undefined;
  lastCountSentAt = 0;
  /** History channels only: puts positioned messages back in offset order (sequencer.ts). */
  sequencer: Sequencer<ChannelMessage> | undefined;
  /** Connections replaying history here (channel-history.ts); undefined until one resumes. */
  catching: Map<Connection, Catching> | undefined;
  /** Interest routing: the node is subscribing to this channel's shard; joiners are told once it settles. */
  joining: Promise<void> | undefined;

  constructor(
    readonly name: string,
    readonly kind: ChannelKind,
    readonly traffic: Traffic,
  ) {
    if (kind.isPresence) {
      this.memberOf = new Map();
      this.localSockets = new Map();
    }
  }
}

export interface CacheEntry {
  readonly message: ChannelMessage;
  readonly expiresAt: number;
}

/** Everything one app holds on this node; each concern of the hub reads and keeps its part. */
export class AppState {
  readonly traffic: Traffic = { published: 0, delivered: 0, deliveredBytes: 0 };
  // This node's connections and subscriptions.
  readonly connections = new Map<SocketId, Connection>();
  readonly channels = new Map<string, ChannelState>();
  readonly users = new Map<string, Set<Connection>>();
  /** Watched user id → this node's connections whose watchlist names it. */
  readonly watchers = new Map<string, Set<Connection>>();
  readonly cache = new Map<string, CacheEntry>();
  readonly cacheMissReported = new Map<string, number>();
  // The whole cluster's counts, this node's share included, kept as shares change.
  readonly subscriptions = new NodeTally(); // channel → subscribers
  readonly presence = new NodeTally(); // channel SEP user → nodes where the user is in the channel
  readonly members = new Map<string, Map<string, unknown>>(); // channel → user → info, for users present anywhere
  readonly online = new NodeTally(); // user → nodes where the user is signed in
  readonly connectionTally = new NodeTally(); // '' → connections
}

/** The per-app states of this node by app id; `of` makes one on first use (reads use `get`, which never does). */
export class AppStates extends Map<string, AppState> {
  of(appId: string): AppState {
    let s = this.get(appId);
    if (!s) {
      s = new AppState();
      this.set(appId, s);
    }
    return s;
  }
}

export function addToIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

/** Returns true when the key's last value went. */
export function removeFromIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = index.get(key);
  if (!set || !set.delete(value)) return false;
  if (set.size > 0) return false;
  index.delete(key);
  return true;
}
