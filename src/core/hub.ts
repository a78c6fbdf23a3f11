import type { App } from './app.js';
import type { MessageBus } from './bus.js';
import { channelKind, directTarget, type ChannelKind } from './channels.js';
import type { Connection, SignedInUser, SocketId } from './connection.js';
import { Outbound, type ChannelMessage } from './message.js';
import { PresenceRoster } from './presence.js';

/** Subscription counts above this are announced at most once per `SUBSCRIPTION_COUNT_INTERVAL_MS`. */
const SUBSCRIPTION_COUNT_BURST_LIMIT = 100;
const SUBSCRIPTION_COUNT_INTERVAL_MS = 30_000;
const CACHE_SWEEP_INTERVAL_MS = 60_000;

class ChannelState {
  readonly subscribers = new Set<Connection>();
  readonly roster: PresenceRoster | undefined;
  /** Which user each presence socket joined as, so leaving needs no input from the client. */
  readonly memberOf: Map<Connection, string> | undefined;
  countTimer: NodeJS.Timeout | undefined;
  lastCountSentAt = 0;

  constructor(
    readonly name: string,
    readonly kind: ChannelKind,
  ) {
    if (kind.isPresence) {
      this.roster = new PresenceRoster();
      this.memberOf = new Map();
    }
  }
}

class AppState {
  readonly connections = new Map<SocketId, Connection>();
  readonly channels = new Map<string, ChannelState>();
  readonly users = new Map<string, Set<Connection>>();
  /** Watched user id → connections whose watchlist names it. */
  readonly watchers = new Map<string, Set<Connection>>();
  readonly cache = new Map<string, { message: ChannelMessage; expiresAt: number }>();
}

export interface PresenceMember {
  readonly userId: string;
  readonly info: unknown;
}

export type SubscribeOutcome =
  | {
      readonly ok: true;
      /** Members including the joiner, for presence channels. */
      readonly members?: ReadonlyMap<string, unknown>;
      /** For cache channels: the last event, or null for a miss. */
      readonly cached?: ChannelMessage | null;
    }
  | { readonly ok: false; readonly error: 'presence_full' | 'forbidden' };

/** dSock's addressing: one connection, or a user's connections (optionally one session's). */
export type ConnectionTarget = { readonly id: string } | { readonly user: string; readonly session?: string | undefined };

export interface ChannelInfo {
  readonly occupied: boolean;
  readonly subscriptionCount: number;
  readonly userCount: number | undefined;
  readonly cache: { readonly message: ChannelMessage; readonly ttlSeconds: number } | undefined;
}

/**
 * This node's state: connections, channels, presence and signed-in users, per app. All look-ups
 * are by key and all counts are kept as things change, so nothing on the hot path scans.
 */
export class Hub {
  private readonly apps = new Map<string, AppState>();
  private connectionCount = 0;
  private cacheSweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: MessageBus,
    private readonly appById: (id: string) => App | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  start(): Promise<void> {
    // Expired cache entries of channels nobody reads again would otherwise stay forever.
    this.cacheSweep = setInterval(() => this.sweepCaches(), CACHE_SWEEP_INTERVAL_MS);
    this.cacheSweep.unref();
    return this.bus.start((appId, message) => this.deliver(appId, message));
  }

  sweepCaches(): void {
    const now = this.now();
    for (const app of this.apps.values()) {
      for (const [name, entry] of app.cache) if (entry.expiresAt <= now) app.cache.delete(name);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.cacheSweep);
    for (const app of this.apps.values()) {
      for (const ch of app.channels.values()) clearTimeout(ch.countTimer);
    }
    await this.bus.close();
  }

  get size(): number {
    return this.connectionCount;
  }

  private state(appId: string): AppState {
    let s = this.apps.get(appId);
    if (!s) {
      s = new AppState();
      this.apps.set(appId, s);
    }
    return s;
  }

  /** Registers a connection; false when the app is at its connection quota. */
  addConnection(conn: Connection): boolean {
    const s = this.state(conn.app.id);
    if (conn.app.maxConnections > 0 && s.connections.size >= conn.app.maxConnections) return false;
    s.connections.set(conn.id, conn);
    this.connectionCount += 1;
    return true;
  }

  removeConnection(conn: Connection): void {
    const s = this.apps.get(conn.app.id);
    if (!s || !s.connections.delete(conn.id)) return;
    this.connectionCount -= 1;
    for (const name of [...conn.channels]) this.unsubscribe(conn, name);
    const user = conn.user;
    if (user) {
      for (const watched of user.watchlist) removeFromIndex(s.watchers, watched, conn);
      if (removeFromIndex(s.users, user.id, conn)) this.announceWatchlist(s, user.id, false);
    }
  }

  connection(appId: string, id: SocketId): Connection | undefined {
    return this.apps.get(appId)?.connections.get(id);
  }

  /**
   * Subscribes after the front-end has checked the client's credentials. Presence joins tell
   * the other members (first socket of a user only); the joiner gets the roster back instead.
   */
  subscribe(conn: Connection, name: string, member?: PresenceMember): SubscribeOutcome {
    const s = this.state(conn.app.id);
    let ch = s.channels.get(name);
    const kind = ch?.kind ?? channelKind(name);
    if (kind.serverToUser !== undefined && conn.user?.id !== kind.serverToUser) return { ok: false, error: 'forbidden' };
    if (kind.isPresence && !member) return { ok: false, error: 'forbidden' };
    if (conn.channels.has(name)) return this.subscribed(s, ch as ChannelState);

    if (ch?.roster && member && !ch.roster.has(member.userId) && ch.roster.size >= conn.app.maxPresenceMembers) {
      return { ok: false, error: 'presence_full' };
    }
    if (!ch) {
      ch = new ChannelState(name, kind);
      s.channels.set(name, ch);
    }
    ch.subscribers.add(conn);
    conn.channels.add(name);
    if (ch.roster && ch.memberOf && member) {
      ch.memberOf.set(conn, member.userId);
      if (ch.roster.join(member.userId, member.info)) {
        this.deliverTo(ch, { kind: 'member_added', channel: name, userId: member.userId, userInfo: member.info, exceptSocketId: conn.id });
      }
    } else {
      this.announceCount(conn.app, ch);
    }
    return this.subscribed(s, ch);
  }

  private subscribed(s: AppState, ch: ChannelState): SubscribeOutcome {
    const members = ch.roster?.snapshot();
    if (!ch.kind.isCache) return members ? { ok: true, members } : { ok: true };
    const cached = this.cachedEvent(s, ch.name)?.message ?? null;
    return members ? { ok: true, members, cached } : { ok: true, cached };
  }

  unsubscribe(conn: Connection, name: string): void {
    const s = this.apps.get(conn.app.id);
    const ch = s?.channels.get(name);
    if (!s || !ch || !ch.subscribers.delete(conn)) return;
    conn.channels.delete(name);
    if (ch.roster && ch.memberOf) {
      const userId = ch.memberOf.get(conn);
      ch.memberOf.delete(conn);
      if (userId !== undefined && ch.roster.leave(userId)) {
        this.deliverTo(ch, { kind: 'member_removed', channel: name, userId });
      }
    } else if (ch.subscribers.size > 0) {
      this.announceCount(conn.app, ch);
    }
    if (ch.subscribers.size === 0) {
      clearTimeout(ch.countTimer);
      s.channels.delete(name);
    }
  }

  /** The user a connection joined a presence channel as. */
  memberUserId(conn: Connection, name: string): string | undefined {
    return this.apps.get(conn.app.id)?.channels.get(name)?.memberOf?.get(conn);
  }

  /** Publishes through the bus, so every node (this one included) delivers it. */
  publish(app: App, message: ChannelMessage): void {
    this.bus.publish(app.id, message);
  }

  /** Local fan-out of a message that the bus brought to this node. */
  deliver(appId: string, message: ChannelMessage): number {
    const direct = directTarget(message.channel);
    if (direct) return this.deliverDirect(appId, direct, message);
    if (message.kind === 'event' && !message.fromClient && channelKind(message.channel).isCache) {
      const app = this.appById(appId);
      if (app) this.state(appId).cache.set(message.channel, { message, expiresAt: this.now() + app.cacheTtlSeconds * 1000 });
    }
    const ch = this.apps.get(appId)?.channels.get(message.channel);
    return ch ? this.deliverTo(ch, message) : 0;
  }

  /**
   * Messages to a user reach all of that user's connections, whether or not they subscribed to
   * the user channel and whichever protocol they speak; messages to a socket reach that socket.
   */
  private deliverDirect(appId: string, target: { user: string } | { socket: string }, message: ChannelMessage): number {
    const s = this.apps.get(appId);
    if (!s) return 0;
    const session = message.kind === 'event' ? message.session : undefined;
    let targets: Iterable<Connection>;
    if ('user' in target) targets = s.users.get(target.user) ?? EMPTY;
    else {
      const conn = s.connections.get(target.socket);
      targets = conn ? [conn] : [];
    }
    const out = new Outbound(message);
    let sent = 0;
    for (const conn of targets) {
      if (session !== undefined && conn.user?.session !== session) continue;
      const bytes = out.bytesFor(conn.wire);
      if (bytes !== null && conn.write(bytes)) sent += 1;
    }
    return sent;
  }

  private deliverTo(ch: ChannelState, message: ChannelMessage): number {
    const out = new Outbound(message);
    const except = message.exceptSocketId;
    let sent = 0;
    for (const conn of ch.subscribers) {
      if (conn.id === except) continue;
      const bytes = out.bytesFor(conn.wire);
      if (bytes !== null && conn.write(bytes)) sent += 1;
    }
    return sent;
  }

  private announceCount(app: App, ch: ChannelState): void {
    if (!app.enableSubscriptionCount) return;
    const send = (): void => {
      ch.countTimer = undefined;
      ch.lastCountSentAt = this.now();
      this.deliverTo(ch, { kind: 'subscription_count', channel: ch.name, count: ch.subscribers.size });
    };
    // Busy channels would otherwise get a message per join: Pusher throttles them to one per 30 s.
    if (ch.subscribers.size <= SUBSCRIPTION_COUNT_BURST_LIMIT) {
      send();
      return;
    }
    if (ch.countTimer) return;
    const wait = Math.max(0, ch.lastCountSentAt + SUBSCRIPTION_COUNT_INTERVAL_MS - this.now());
    ch.countTimer = setTimeout(send, wait);
    ch.countTimer.unref();
  }

  /** Binds a connection to a user: sign-in on Pusher, authentication on the native protocol. */
  signIn(conn: Connection, user: SignedInUser): void {
    const s = this.state(conn.app.id);
    conn.user = user;
    const sockets = s.users.get(user.id);
    if (sockets) sockets.add(conn);
    else {
      s.users.set(user.id, new Set([conn]));
      this.announceWatchlist(s, user.id, true);
    }
    if (user.watchlist.length === 0) return;
    const online: string[] = [];
    const offline: string[] = [];
    for (const watched of user.watchlist) {
      addToIndex(s.watchers, watched, conn);
      (s.users.has(watched) ? online : offline).push(watched);
    }
    conn.notify({ kind: 'watchlist', online, offline });
  }

  private announceWatchlist(s: AppState, userId: string, online: boolean): void {
    const watchers = s.watchers.get(userId);
    if (!watchers) return;
    const ids = [userId];
    for (const conn of watchers) conn.notify(online ? { kind: 'watchlist', online: ids, offline: [] } : { kind: 'watchlist', online: [], offline: ids });
  }

  /** Closes every connection of a user on this node; returns how many. */
  terminateUser(appId: string, userId: string): number {
    const sockets = this.apps.get(appId)?.users.get(userId);
    if (!sockets) return 0;
    const all = [...sockets];
    for (const conn of all) conn.close('terminated');
    return all.length;
  }

  /** Connections of a user (optionally one session of it), or one connection by id. */
  findConnections(appId: string, target: ConnectionTarget): Connection[] {
    const s = this.apps.get(appId);
    if (!s) return [];
    if ('id' in target) {
      const conn = s.connections.get(target.id);
      return conn ? [conn] : [];
    }
    const all = [...(s.users.get(target.user) ?? EMPTY)];
    return target.session === undefined ? all : all.filter((c) => c.user?.session === target.session);
  }

  userConnections(appId: string, userId: string): ReadonlySet<Connection> {
    return this.apps.get(appId)?.users.get(userId) ?? EMPTY;
  }

  connections(appId: string): IterableIterator<Connection> {
    return (this.apps.get(appId)?.connections ?? new Map<SocketId, Connection>()).values();
  }

  connectionCountOf(appId: string): number {
    return this.apps.get(appId)?.connections.size ?? 0;
  }

  channelInfo(appId: string, name: string): ChannelInfo {
    const s = this.apps.get(appId);
    const ch = s?.channels.get(name);
    const cached = s ? this.cachedEvent(s, name) : undefined;
    return {
      occupied: ch !== undefined,
      subscriptionCount: ch?.subscribers.size ?? 0,
      userCount: ch?.roster?.size ?? (channelKind(name).isPresence ? 0 : undefined),
      cache: cached && { message: cached.message, ttlSeconds: Math.max(0, Math.ceil((cached.expiresAt - this.now()) / 1000)) },
    };
  }

  /** Occupied channels whose name starts with `prefix`. */
  channels(appId: string, prefix = ''): Map<string, ChannelInfo> {
    const out = new Map<string, ChannelInfo>();
    const s = this.apps.get(appId);
    if (!s) return out;
    for (const ch of s.channels.values()) {
      if (!ch.name.startsWith(prefix)) continue;
      out.set(ch.name, {
        occupied: true,
        subscriptionCount: ch.subscribers.size,
        userCount: ch.roster?.size,
        cache: undefined,
      });
    }
    return out;
  }

  presenceUserIds(appId: string, name: string): string[] {
    return this.apps.get(appId)?.channels.get(name)?.roster?.userIds() ?? [];
  }

  private cachedEvent(s: AppState, name: string): { message: ChannelMessage; expiresAt: number } | undefined {
    const entry = s.cache.get(name);
    if (entry && entry.expiresAt <= this.now()) {
      s.cache.delete(name);
      return undefined;
    }
    return entry;
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();

function addToIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): void {
  const set = index.get(key);
  if (set) set.add(value);
  else index.set(key, new Set([value]));
}

/** Returns true when the key's last value went. */
function removeFromIndex<K, V>(index: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = index.get(key);
  if (!set || !set.delete(value)) return false;
  if (set.size > 0) return false;
  index.delete(key);
  return true;
}
