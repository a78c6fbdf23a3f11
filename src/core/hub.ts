import type { App } from './app.js';
import type { BusSink, ClusterCommand, CommandResult, ConnectionTarget, MessageBus } from './bus.js';
import { channelKind, directTarget, type ChannelKind } from './channels.js';
import type { Connection, SignedInUser, SocketId } from './connection.js';
import { Counters } from './counters.js';
import type { HubEvent, HubEventListener } from './hub-events.js';
import { Outbound, type ChannelMessage } from './message.js';
import type { StateDelta } from './state-delta.js';
import { NodeTally } from './tally.js';

export type { ConnectionTarget } from './bus.js';

/** Subscription counts above this are announced at most once per `SUBSCRIPTION_COUNT_INTERVAL_MS`. */
const SUBSCRIPTION_COUNT_BURST_LIMIT = 100;
const SUBSCRIPTION_COUNT_INTERVAL_MS = 30_000;
const CACHE_SWEEP_INTERVAL_MS = 60_000;
const CACHE_MISS_REPORT_MS = 60_000;
/**
 * Channels whose cache miss was reported lately, per app. Any client can name new cache
 * channels, so the record is bounded: past it the oldest entry goes (that channel may report
 * again sooner), rather than memory growing with every name tried.
 */
const MAX_CACHE_MISSES_TRACKED = 10_000;
/** Separates channel and user id in presence keys. Channel names cannot contain it; user ids may. */
const SEP = '\u0000';

function splitPresenceKey(key: string): [channel: string, userId: string] {
  const at = key.indexOf(SEP); // the first one: what follows is the user id, whatever it holds
  return [key.slice(0, at), key.slice(at + 1)];
}

/** What this node published and delivered for one app (monotonic, for metrics). */
export interface Traffic {
  /** Messages published from this node (HTTP API, client events, embedding). */
  published: number;
  /** Frames handed to this node's connections. */
  delivered: number;
  deliveredBytes: number;
}

/** This node's subscribers of one channel. */
class ChannelState {
  readonly subscribers = new Set<Connection>();
  /** Presence only: which user each socket joined as, and how many sockets each user has here. */
  readonly memberOf: Map<Connection, string> | undefined;
  readonly localSockets: Map<string, number> | undefined;
  countTimer: NodeJS.Timeout | undefined;
  lastCountSentAt = 0;

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

class AppState {
  readonly traffic: Traffic = { published: 0, delivered: 0, deliveredBytes: 0 };
  // This node's connections and subscriptions.
  readonly connections = new Map<SocketId, Connection>();
  readonly channels = new Map<string, ChannelState>();
  readonly users = new Map<string, Set<Connection>>();
  /** Watched user id → this node's connections whose watchlist names it. */
  readonly watchers = new Map<string, Set<Connection>>();
  readonly cache = new Map<string, { message: ChannelMessage; expiresAt: number }>();
  readonly cacheMissReported = new Map<string, number>();
  // The whole cluster's counts, this node's share included, kept as shares change.
  readonly subscriptions = new NodeTally(); // channel → subscribers
  readonly presence = new NodeTally(); // channel SEP user → nodes where the user is in the channel
  readonly members = new Map<string, Map<string, unknown>>(); // channel → user → info, for users present anywhere
  readonly online = new NodeTally(); // user → nodes where the user is signed in
  readonly connectionTally = new NodeTally(); // '' → connections
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
  | { readonly ok: false; readonly error: 'presence_full' | 'forbidden' | 'channel_full' | 'too_many_channels' | 'closed' };

export interface ChannelInfo {
  readonly occupied: boolean;
  readonly subscriptionCount: number;
  readonly userCount: number | undefined;
  readonly cache: { readonly message: ChannelMessage; readonly ttlSeconds: number } | undefined;
}

/**
 * A node's state: its connections, channels, presence and signed-in users per app, plus the
 * cluster-wide counts that the bus keeps it told about. Look-ups are by key and counts are kept
 * as things change, so nothing on the hot path scans, and no API call asks the other nodes.
 */
export class Hub implements BusSink {
  private readonly apps = new Map<string, AppState>();
  private readonly self: string;
  private connectionCount = 0;
  private cacheSweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: MessageBus,
    private readonly appById: (id: string) => App | undefined,
    private readonly now: () => number = Date.now,
    private readonly onEvent: HubEventListener = () => undefined,
    /** Refusals and losses per app, for the stats endpoint. */
    readonly counters: Counters = new Counters(),
  ) {
    this.self = bus.nodeId;
  }

  /** Reports an event for webhooks (client events are reported by the front-end that received them). */
  report(appId: string, event: HubEvent): void {
    this.onEvent(appId, event);
  }

  get nodeId(): string {
    return this.self;
  }

  get isHealthy(): boolean {
    return this.bus.isHealthy;
  }

  start(): Promise<void> {
    // Expired cache entries of channels nobody reads again would otherwise stay forever.
    this.cacheSweep = setInterval(() => this.sweepCaches(), CACHE_SWEEP_INTERVAL_MS);
    this.cacheSweep.unref();
    return this.bus.start(this);
  }

  async close(): Promise<void> {
    clearInterval(this.cacheSweep);
    for (const app of this.apps.values()) {
      for (const ch of app.channels.values()) clearTimeout(ch.countTimer);
    }
    await this.bus.close();
  }

  sweepCaches(): void {
    const now = this.now();
    for (const app of this.apps.values()) {
      for (const [name, entry] of app.cache) if (entry.expiresAt <= now) app.cache.delete(name);
      for (const [name, at] of app.cacheMissReported) if (now - at >= CACHE_MISS_REPORT_MS) app.cacheMissReported.delete(name);
    }
  }

  /** Connections on this node, over all apps. */
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

  // --- connections ---

  /** Registers a connection; false when the app is at its (cluster-wide) connection quota. */
  addConnection(conn: Connection): boolean {
    const s = this.state(conn.app.id);
    if (conn.app.maxConnections > 0 && s.connectionTally.total('') >= conn.app.maxConnections) return false;
    s.connections.set(conn.id, conn);
    this.connectionCount += 1;
    this.setConnections(s, conn.app.id);
    return true;
  }

  removeConnection(conn: Connection): void {
    const s = this.apps.get(conn.app.id);
    if (!s || !s.connections.delete(conn.id)) return;
    this.connectionCount -= 1;
    this.setConnections(s, conn.app.id);
    for (const name of [...conn.channels]) this.unsubscribe(conn, name);
    const user = conn.user;
    if (user) {
      for (const watched of user.watchlist) removeFromIndex(s.watchers, watched, conn);
      if (removeFromIndex(s.users, user.id, conn)) this.setOnline(s, conn.app.id, this.self, user.id, 0);
    }
  }

  private setConnections(s: AppState, appId: string): void {
    s.connectionTally.set(this.self, '', s.connections.size);
    this.bus.announce({ kind: 'connections', appId, count: s.connections.size });
  }

  connection(appId: string, id: SocketId): Connection | undefined {
    return this.apps.get(appId)?.connections.get(id);
  }

  connections(appId: string): IterableIterator<Connection> {
    return (this.apps.get(appId)?.connections ?? new Map<SocketId, Connection>()).values();
  }

  /** Connections of the app over the whole cluster. */
  connectionCountOf(appId: string): number {
    return this.apps.get(appId)?.connectionTally.total('') ?? 0;
  }

  /** This node's connections of a user (optionally one session of it), or one connection by id. */
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

  /** This node's signed-in connections of a user. */
  userConnections(appId: string, userId: string): ReadonlySet<Connection> {
    return this.apps.get(appId)?.users.get(userId) ?? EMPTY;
  }

  // --- subscriptions ---

  /**
   * Subscribes after the front-end has checked the client's credentials. Presence joins tell the
   * members (a user's first socket anywhere in the cluster only); the joiner gets the roster.
   */
  subscribe(conn: Connection, name: string, member?: PresenceMember): SubscribeOutcome {
    const s = this.state(conn.app.id);
    // A connection that is not (or no longer) in the hub would never be removed from the channel.
    if (s.connections.get(conn.id) !== conn) return { ok: false, error: 'closed' };
    let ch = s.channels.get(name);
    const kind = ch?.kind ?? channelKind(name);
    if (kind.serverToUser !== undefined && conn.user?.id !== kind.serverToUser) return { ok: false, error: 'forbidden' };
    if (kind.isPresence && !member) return { ok: false, error: 'forbidden' };
    if (ch && conn.channels.has(name)) return this.subscribed(s, ch, conn.app.id);

    if (conn.channels.size >= conn.app.maxChannelsPerConnection) return { ok: false, error: 'too_many_channels' };
    if (conn.app.maxChannelSubscribers > 0 && ch && ch.subscribers.size >= conn.app.maxChannelSubscribers) return { ok: false, error: 'channel_full' };
    if (kind.isPresence && member) {
      const present = s.members.get(name);
      if (present && !present.has(member.userId) && present.size >= conn.app.maxPresenceMembers) return { ok: false, error: 'presence_full' };
    }
    if (!ch) {
      ch = new ChannelState(name, kind, s.traffic);
      s.channels.set(name, ch);
    }
    ch.subscribers.add(conn);
    conn.channels.add(name);
    this.setSubscriptions(s, conn.app, ch);
    if (ch.memberOf && ch.localSockets && member) {
      ch.memberOf.set(conn, member.userId);
      const sockets = (ch.localSockets.get(member.userId) ?? 0) + 1;
      ch.localSockets.set(member.userId, sockets);
      if (sockets === 1) this.setPresence(s, conn.app.id, this.self, name, member.userId, 1, member.info, conn.id);
      else s.members.get(name)?.set(member.userId, member.info); // the newest join describes the user
    }
    return this.subscribed(s, ch, conn.app.id);
  }

  /** One cache_miss webhook per channel per `CACHE_MISS_REPORT_MS`, not one per subscriber. */
  private reportCacheMiss(s: AppState, appId: string, channel: string): void {
    const now = this.now();
    const last = s.cacheMissReported.get(channel);
    if (last !== undefined && now - last < CACHE_MISS_REPORT_MS) return;
    if (last === undefined && s.cacheMissReported.size >= MAX_CACHE_MISSES_TRACKED) {
      const oldest = s.cacheMissReported.keys().next().value;
      if (oldest !== undefined) s.cacheMissReported.delete(oldest);
    }
    s.cacheMissReported.delete(channel); // re-inserted at the end: the map stays in report order
    s.cacheMissReported.set(channel, now);
    this.onEvent(appId, { name: 'cache_miss', channel });
  }

  private subscribed(s: AppState, ch: ChannelState, appId: string): SubscribeOutcome {
    const members = ch.kind.isPresence ? new Map(s.members.get(ch.name)) : undefined;
    if (!ch.kind.isCache) return members ? { ok: true, members } : { ok: true };
    const cached = this.cachedEvent(s, ch.name)?.message ?? null;
    if (cached === null) this.reportCacheMiss(s, appId, ch.name);
    return members ? { ok: true, members, cached } : { ok: true, cached };
  }

  unsubscribe(conn: Connection, name: string): void {
    const s = this.apps.get(conn.app.id);
    const ch = s?.channels.get(name);
    if (!s || !ch || !ch.subscribers.delete(conn)) return;
    conn.channels.delete(name);
    if (ch.memberOf && ch.localSockets) {
      const userId = ch.memberOf.get(conn);
      ch.memberOf.delete(conn);
      if (userId !== undefined) {
        const sockets = (ch.localSockets.get(userId) ?? 1) - 1;
        if (sockets > 0) ch.localSockets.set(userId, sockets);
        else {
          ch.localSockets.delete(userId);
          this.setPresence(s, conn.app.id, this.self, name, userId, 0, undefined, undefined);
        }
      }
    }
    if (ch.subscribers.size === 0) {
      clearTimeout(ch.countTimer);
      s.channels.delete(name);
    }
    this.setSubscriptions(s, conn.app, ch);
  }

  /** The user a connection joined a presence channel as. */
  memberUserId(conn: Connection, name: string): string | undefined {
    return this.apps.get(conn.app.id)?.channels.get(name)?.memberOf?.get(conn);
  }

  private setSubscriptions(s: AppState, app: App, ch: ChannelState): void {
    const [before, after] = s.subscriptions.set(this.self, ch.name, ch.subscribers.size);
    if (before === after) return;
    // User channels (#server-to-user-…) are plumbing of sign-in, not channels a backend asked for.
    if (!ch.kind.serverToUser) {
      if (before === 0) this.onEvent(app.id, { name: 'channel_occupied', channel: ch.name });
      else if (after === 0) this.onEvent(app.id, { name: 'channel_vacated', channel: ch.name });
    }
    this.bus.announce({ kind: 'subscriptions', appId: app.id, channel: ch.name, count: ch.subscribers.size });
    // After the current call returns, so a joiner hears subscription_succeeded before the count.
    if (s.channels.has(ch.name)) queueMicrotask(() => this.announceCount(app, ch, s.subscriptions.total(ch.name)));
  }

  /**
   * Records whether `node` has the user in a presence channel. The cluster-wide first join and
   * last leave are what members hear about; each node tells its own subscribers.
   */
  private setPresence(s: AppState, appId: string, node: string, channel: string, userId: string, count: number, info: unknown, except: SocketId | undefined): void {
    const [before, after] = s.presence.set(node, channel + SEP + userId, count > 0 ? 1 : 0);
    if (node === this.self) {
      this.bus.announce({ kind: 'presence', appId, channel, userId, count, ...(count > 0 ? { info } : {}) });
      if (before === 0 && after > 0) this.onEvent(appId, { name: 'member_added', channel, userId });
      else if (before > 0 && after === 0) this.onEvent(appId, { name: 'member_removed', channel, userId });
    }
    if (after > 0) {
      let members = s.members.get(channel);
      if (!members) s.members.set(channel, (members = new Map()));
      members.set(userId, info);
    }
    if (before === 0 && after > 0) {
      this.deliverToChannel(s, channel, { kind: 'member_added', channel, userId, userInfo: info, ...(except ? { exceptSocketId: except } : {}) });
    } else if (before > 0 && after === 0) {
      const members = s.members.get(channel);
      members?.delete(userId);
      if (members?.size === 0) s.members.delete(channel);
      this.deliverToChannel(s, channel, { kind: 'member_removed', channel, userId });
    }
  }

  private announceCount(app: App, ch: ChannelState, count: number): void {
    // A user's own channel is the server's way to reach them, not a room whose size matters.
    if (!app.enableSubscriptionCount || ch.kind.isPresence || ch.kind.serverToUser !== undefined) return;
    const send = (): void => {
      ch.countTimer = undefined;
      ch.lastCountSentAt = this.now();
      const total = this.apps.get(app.id)?.subscriptions.total(ch.name) ?? 0;
      this.deliverTo(ch, { kind: 'subscription_count', channel: ch.name, count: total });
    };
    // Busy channels would otherwise get a message per join: Pusher throttles them to one per 30 s.
    if (count <= SUBSCRIPTION_COUNT_BURST_LIMIT) return send();
    if (ch.countTimer) return;
    const wait = Math.max(0, ch.lastCountSentAt + SUBSCRIPTION_COUNT_INTERVAL_MS - this.now());
    ch.countTimer = setTimeout(send, wait);
    ch.countTimer.unref();
  }

  // --- publishing ---

  /** Publishes through the bus, so every node (this one included) delivers it. */
  publish(app: App, message: ChannelMessage): void {
    this.state(app.id).traffic.published += 1;
    this.bus.publish(app.id, message);
  }

  /** This node's publish and delivery totals for the app. */
  traffic(appId: string): Readonly<Traffic> {
    return this.apps.get(appId)?.traffic ?? NO_TRAFFIC;
  }

  /** Channels with subscribers on this node. */
  localChannelCount(appId: string): number {
    return this.apps.get(appId)?.channels.size ?? 0;
  }

  /** Local fan-out of a message that the bus brought to this node. */
  deliver(appId: string, message: ChannelMessage): void {
    const direct = directTarget(message.channel);
    if (direct) {
      this.deliverDirect(appId, direct, message);
      return;
    }
    const ch = this.apps.get(appId)?.channels.get(message.channel);
    // A subscribed channel knows its kind: no name parsing per message on the hot path.
    if (message.kind === 'event' && !message.fromClient && (ch ? ch.kind.isCache : channelKind(message.channel).isCache)) {
      const app = this.appById(appId);
      if (app) {
        const s = this.state(appId);
        s.cache.set(message.channel, { message, expiresAt: this.now() + app.cacheTtlSeconds * 1000 });
        s.cacheMissReported.delete(message.channel);
      }
    }
    if (ch) this.deliverTo(ch, message);
  }

  /**
   * Messages to a user reach all of that user's connections here, whether or not they
   * subscribed to the user channel and whichever protocol they speak; messages to a socket
   * reach that socket.
   */
  private deliverDirect(appId: string, target: { user: string } | { socket: string } | { all: true }, message: ChannelMessage): void {
    const s = this.apps.get(appId);
    if (!s) return;
    const session = message.kind === 'event' ? message.session : undefined;
    let targets: Iterable<Connection>;
    if ('user' in target) targets = s.users.get(target.user) ?? EMPTY;
    else if ('all' in target) targets = s.connections.values();
    else {
      const conn = s.connections.get(target.socket);
      targets = conn ? [conn] : [];
    }
    const out = new Outbound(message);
    let frames = 0;
    let bytesSent = 0;
    const except = message.exceptSocketId;
    for (const conn of targets) {
      if (conn.id === except || (session !== undefined && conn.user?.session !== session)) continue;
      const bytes = out.bytesFor(conn.wire);
      if (bytes !== null && conn.write(bytes)) {
        frames += 1;
        bytesSent += bytes.length;
      }
    }
    s.traffic.delivered += frames;
    s.traffic.deliveredBytes += bytesSent;
  }

  private deliverToChannel(s: AppState, channel: string, message: ChannelMessage): void {
    const ch = s.channels.get(channel);
    if (ch) this.deliverTo(ch, message);
  }

  private deliverTo(ch: ChannelState, message: ChannelMessage): void {
    const out = new Outbound(message);
    const except = message.exceptSocketId;
    let frames = 0;
    let bytesSent = 0;
    for (const conn of ch.subscribers) {
      if (conn.id === except) continue;
      const bytes = out.bytesFor(conn.wire);
      if (bytes !== null && conn.write(bytes)) {
        frames += 1;
        bytesSent += bytes.length;
      }
    }
    ch.traffic.delivered += frames;
    ch.traffic.deliveredBytes += bytesSent;
  }

  // --- users ---

  /** Binds a connection to a user: sign-in on Pusher, authentication on the native protocol. */
  signIn(conn: Connection, user: SignedInUser): void {
    const s = this.state(conn.app.id);
    if (s.connections.get(conn.id) !== conn) return; // closed meanwhile: nothing would undo it
    conn.user = user;
    const sockets = s.users.get(user.id);
    if (sockets) sockets.add(conn);
    else {
      s.users.set(user.id, new Set([conn]));
      this.setOnline(s, conn.app.id, this.self, user.id, 1);
    }
    if (user.watchlist.length === 0) return;
    const online: string[] = [];
    const offline: string[] = [];
    for (const watched of user.watchlist) {
      addToIndex(s.watchers, watched, conn);
      (s.online.total(watched) > 0 ? online : offline).push(watched);
    }
    conn.notify({ kind: 'watchlist', online, offline });
  }

  private setOnline(s: AppState, appId: string, node: string, userId: string, count: number): void {
    const [before, after] = s.online.set(node, userId, count > 0 ? 1 : 0);
    if (node === this.self) this.bus.announce({ kind: 'user', appId, userId, count });
    if ((before === 0) === (after === 0)) return;
    const watchers = s.watchers.get(userId);
    if (!watchers) return;
    const ids = [userId];
    const notice = after > 0 ? { kind: 'watchlist' as const, online: ids, offline: [] } : { kind: 'watchlist' as const, online: [], offline: ids };
    for (const conn of watchers) conn.notify(notice);
  }

  /** Closes every connection of a user on every node. */
  async terminateUser(appId: string, userId: string): Promise<number> {
    return this.runEverywhere({ kind: 'terminate', appId, target: { user: userId } });
  }

  /** dSock's /disconnect over the cluster; returns how many connections closed. */
  async disconnect(appId: string, target: ConnectionTarget): Promise<number> {
    return this.runEverywhere({ kind: 'terminate', appId, target });
  }

  private async runEverywhere(command: ClusterCommand): Promise<number> {
    const results = await this.bus.request(command);
    return results.reduce((sum, r) => sum + (r.closed ?? 0), 0);
  }

  /** Connections over the cluster matching `target`, for dSock's /info. */
  async describe(appId: string, target: ConnectionTarget): Promise<ConnectionSummaryList> {
    const results = await this.bus.request({ kind: 'info', appId, target });
    return results.flatMap((r) => r.connections ?? []);
  }

  /** Sets (or with undefined, clears) the embedding application's data of connections anywhere in the cluster; returns how many. */
  async setMetadata(appId: string, target: ConnectionTarget, value: unknown): Promise<number> {
    const results = await this.bus.request({ kind: 'metadata', appId, target, value });
    return results.reduce((sum, r) => sum + (r.updated ?? 0), 0);
  }

  execute(command: ClusterCommand): CommandResult {
    const conns = this.findConnections(command.appId, command.target);
    if (command.kind === 'terminate') {
      for (const conn of conns) conn.close('terminated');
      return { closed: conns.length };
    }
    if (command.kind === 'metadata') {
      for (const conn of conns) conn.metadata = command.value;
      return { updated: conns.length };
    }
    return {
      connections: conns.map((c) => ({
        id: c.id,
        node: this.self,
        protocol: c.protocol,
        user: c.user?.id,
        session: c.user?.session,
        lastActivityAt: c.lastActivityAt,
        ...(c.metadata === undefined ? {} : { metadata: c.metadata }),
      })),
    };
  }

  // --- what the REST APIs read (cluster-wide, from this node's copy) ---

  channelInfo(appId: string, name: string): ChannelInfo {
    const s = this.apps.get(appId);
    const count = s?.subscriptions.total(name) ?? 0;
    const cached = s ? this.cachedEvent(s, name) : undefined;
    return {
      occupied: count > 0,
      subscriptionCount: count,
      userCount: channelKind(name).isPresence ? (s?.members.get(name)?.size ?? 0) : undefined,
      cache: cached && { message: cached.message, ttlSeconds: Math.max(0, Math.ceil((cached.expiresAt - this.now()) / 1000)) },
    };
  }

  /** Occupied channels whose name starts with `prefix`. */
  channels(appId: string, prefix = ''): Map<string, ChannelInfo> {
    const out = new Map<string, ChannelInfo>();
    const s = this.apps.get(appId);
    if (!s) return out;
    for (const name of s.subscriptions.keys()) {
      if (!name.startsWith(prefix) || name.startsWith('#')) continue;
      out.set(name, {
        occupied: true,
        subscriptionCount: s.subscriptions.total(name),
        userCount: s.members.get(name)?.size ?? (channelKind(name).isPresence ? 0 : undefined),
        cache: undefined,
      });
    }
    return out;
  }

  /** Whether the user is in the presence channel anywhere in the cluster. */
  isMember(appId: string, channel: string, userId: string): boolean {
    return this.apps.get(appId)?.members.get(channel)?.has(userId) ?? false;
  }

  presenceUserIds(appId: string, name: string): string[] {
    return [...(this.apps.get(appId)?.members.get(name)?.keys() ?? [])];
  }

  private cachedEvent(s: AppState, name: string): { message: ChannelMessage; expiresAt: number } | undefined {
    const entry = s.cache.get(name);
    if (entry && entry.expiresAt <= this.now()) {
      s.cache.delete(name);
      return undefined;
    }
    return entry;
  }

  // --- other nodes' shares ---

  applyRemote(node: string, deltas: readonly StateDelta[], replace: boolean): void {
    if (node === this.self) return;
    if (replace) this.dropMissing(node, deltas);
    for (const d of deltas) {
      const s = this.state(d.appId);
      switch (d.kind) {
        case 'subscriptions': {
          const [before, after] = s.subscriptions.set(node, d.channel, d.count);
          const ch = s.channels.get(d.channel);
          const app = this.appById(d.appId);
          if (ch && app && before !== after) this.announceCount(app, ch, after);
          break;
        }
        case 'presence':
          this.setPresence(s, d.appId, node, d.channel, d.userId, d.count, d.info, undefined);
          break;
        case 'user':
          this.setOnline(s, d.appId, node, d.userId, d.count);
          break;
        case 'connections':
          s.connectionTally.set(node, '', d.count);
          break;
        case 'cache': {
          const mine = s.cache.get(d.message.channel);
          if ((!mine || mine.expiresAt < d.expiresAt) && d.expiresAt > this.now()) s.cache.set(d.message.channel, { message: d.message, expiresAt: d.expiresAt });
          break;
        }
      }
    }
  }

  /**
   * Before a snapshot is applied: whatever the node owned that the snapshot lacks is gone.
   * `reportLeaves`: raise channel_vacated / member_removed for what that empties cluster-wide.
   */
  private dropMissing(node: string, snapshot: readonly StateDelta[], reportLeaves = false): void {
    const keep = new Set(snapshot.map(deltaKey));
    for (const [appId, s] of this.apps) {
      for (const [channel] of [...s.subscriptions.entriesOf(node)]) {
        if (keep.has(stateKey('s', appId, channel))) continue;
        this.applyRemote(node, [{ kind: 'subscriptions', appId, channel, count: 0 }], false);
        if (reportLeaves && s.subscriptions.total(channel) === 0 && !channelKind(channel).serverToUser) {
          this.onEvent(appId, { name: 'channel_vacated', channel });
        }
      }
      for (const [key] of [...s.presence.entriesOf(node)]) {
        const [channel, userId] = splitPresenceKey(key);
        if (keep.has(stateKey('p', appId, channel, userId))) continue;
        this.setPresence(s, appId, node, channel, userId, 0, undefined, undefined);
        if (reportLeaves && !s.members.get(channel)?.has(userId)) this.onEvent(appId, { name: 'member_removed', channel, userId });
      }
      for (const [userId] of [...s.online.entriesOf(node)]) {
        if (!keep.has(stateKey('u', appId, userId))) this.setOnline(s, appId, node, userId, 0);
      }
      if (!keep.has(stateKey('c', appId))) s.connectionTally.set(node, '', 0);
    }
  }

  dropNode(node: string, reportLeaves: boolean): void {
    if (node === this.self) return;
    this.dropMissing(node, [], reportLeaves);
  }

  ownedState(): StateDelta[] {
    const out: StateDelta[] = [];
    const now = this.now();
    for (const [appId, s] of this.apps) {
      out.push({ kind: 'connections', appId, count: s.connections.size });
      for (const [channel, count] of s.subscriptions.entriesOf(this.self)) out.push({ kind: 'subscriptions', appId, channel, count });
      for (const [key] of s.presence.entriesOf(this.self)) {
        const [channel, userId] = splitPresenceKey(key);
        out.push({ kind: 'presence', appId, channel, userId, count: 1, info: s.members.get(channel)?.get(userId) });
      }
      for (const [userId] of s.online.entriesOf(this.self)) out.push({ kind: 'user', appId, userId, count: 1 });
      for (const { message, expiresAt } of s.cache.values()) if (expiresAt > now) out.push({ kind: 'cache', appId, message, expiresAt });
    }
    return out;
  }
}

type ConnectionSummaryList = import('./bus.js').ConnectionSummary[];

/**
 * Identifies a piece of shared state, for matching a snapshot against what is held. NUL-joined:
 * native channel names and user ids may hold any printable character, but no channel name holds
 * NUL, so the parts cannot run into each other.
 */
function stateKey(...parts: string[]): string {
  return parts.join('\u0000');
}

function deltaKey(d: StateDelta): string {
  switch (d.kind) {
    case 'subscriptions':
      return stateKey('s', d.appId, d.channel);
    case 'presence':
      return stateKey('p', d.appId, d.channel, d.userId);
    case 'user':
      return stateKey('u', d.appId, d.userId);
    case 'connections':
      return stateKey('c', d.appId);
    case 'cache':
      return stateKey('k', d.appId, d.message.channel);
  }
}

const EMPTY: ReadonlySet<Connection> = new Set();
const NO_TRAFFIC: Readonly<Traffic> = { published: 0, delivered: 0, deliveredBytes: 0 };

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
