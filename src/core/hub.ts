import type { App } from './app.js';
import { AppStates, NO_CONNECTIONS, NO_TRAFFIC, type ChannelState, type Traffic } from './app-state.js';
import type { BusSink, ClusterCommand, CommandResult, ConnectionSummary, ConnectionTarget, MessageBus, NodeStats } from './bus.js';
import { CacheChannels } from './cache-channels.js';
import { ChannelHistory, routeCatching, type ResumeOutcome } from './channel-history.js';
import { ChannelReads, type ChannelInfo } from './channel-reads.js';
import { channelKind, directTarget } from './channels.js';
import { ClusterCommands } from './cluster-commands.js';
import { ClusterState } from './cluster-state.js';
import { ConnectionRegistry } from './connection-registry.js';
import type { Connection, SignedInUser, SocketId } from './connection.js';
import { Counters } from './counters.js';
import { DebugTap } from './debug-tap.js';
import { fanOut } from './fan-out.js';
import type { HubContext } from './hub-context.js';
import type { HubEvent, HubEventListener } from './hub-events.js';
import type { HistoryPage, HistoryStore, Position } from './history.js';
import type { HubActions, HubReadView } from './hub-view.js';
import type { ChannelMessage } from './message.js';
import { Presence, type PresenceMember } from './presence.js';
import { Sequencer } from './sequencer.js';
import { MemoryHistoryStore } from './memory-history.js';
import type { StateDelta } from './state-delta.js';
import { Subscriptions, type SubscribeOutcome } from './subscriptions.js';
import { Users } from './users.js';

export type { ConnectionTarget } from './bus.js';
export type { Traffic } from './app-state.js';
export type { ChannelInfo } from './channel-reads.js';
export type { PresenceMember } from './presence.js';
export type { SubscribeOutcome } from './subscriptions.js';

/**
 * A node's state: its connections, channels, presence and signed-in users per app, plus the
 * cluster-wide counts that the bus keeps it told about. Look-ups are by key and counts are kept
 * as things change, so nothing on the hot path scans, and no API call asks the other nodes.
 * Each concern lives in its own module; the hub composes them and owns the delivery of
 * messages the bus brings.
 */
export class Hub implements BusSink, HubReadView, HubActions {
  /** Per-app state, shared by the parts below. */
  private readonly apps = new AppStates();
  private readonly ctx: HubContext;
  private readonly registry: ConnectionRegistry;
  private readonly presence: Presence;
  private readonly users: Users;
  private readonly cache: CacheChannels;
  private readonly subscriptions: Subscriptions;
  private readonly cluster: ClusterState;
  private readonly commands: ClusterCommands;
  private readonly reads: ChannelReads;
  private readonly history: ChannelHistory;
  /** The debug console's feed; costs one boolean check per event while nobody watches. */
  readonly tap: DebugTap;
  /** Extra numbers this node reports in its cluster stats (the webhook queue); set by the server. */
  nodeExtras: () => Readonly<Record<string, number>> = () => ({});

  constructor(
    private readonly bus: MessageBus,
    appById: (id: string) => App | undefined,
    now: () => number = Date.now,
    private readonly onEvent: HubEventListener = () => undefined,
    /** Refusals and losses per app, for the stats endpoint. */
    readonly counters: Counters = new Counters(),
    /** Another node (or this one) changed an app: re-read it. */
    private readonly onAppChanged: (appId: string) => void = () => undefined,
    /** Where history channels keep their messages; the engine's store in a cluster. */
    historyStore: HistoryStore = new MemoryHistoryStore(now),
  ) {
    this.history = new ChannelHistory(historyStore);
    this.ctx = { self: bus.nodeId, bus, apps: this.apps, appById, now, onEvent };
    this.registry = new ConnectionRegistry(this.ctx);
    this.presence = new Presence(this.ctx);
    this.users = new Users(this.ctx);
    this.cache = new CacheChannels(this.ctx);
    this.subscriptions = new Subscriptions(this.ctx, this.presence, this.cache);
    this.cluster = new ClusterState(this.ctx, this.subscriptions, this.presence, this.users, this.cache);
    this.commands = new ClusterCommands(this.ctx, this.registry, () => this.ownStats());
    this.reads = new ChannelReads(this.ctx, this.cache);
    this.tap = new DebugTap(bus.nodeId, (command) => bus.request(command), now);
  }

  /** Reports an event for webhooks (client events are reported by the front-end that received them). */
  report(appId: string, event: HubEvent): void {
    this.onEvent(appId, event);
  }

  get nodeId(): string {
    return this.ctx.self;
  }

  get isHealthy(): boolean {
    return this.bus.isHealthy;
  }

  start(): Promise<void> {
    this.cache.start();
    return this.bus.start(this);
  }

  async close(): Promise<void> {
    this.cache.stop();
    this.tap.close();
    this.subscriptions.stopTimers();
    await this.bus.close();
  }

  sweepCaches(): void {
    this.cache.sweep();
  }

  // --- connections (connection-registry.ts) ---

  /** Connections on this node, over all apps. */
  get size(): number {
    return this.registry.size;
  }

  /** Registers a connection; false when the app is at its (cluster-wide) connection quota. */
  addConnection(conn: Connection): boolean {
    const added = this.registry.add(conn);
    if (added && this.tap.watched) this.tap.emit(conn.app.id, { type: 'connection_opened', socketId: conn.id, detail: conn.protocol });
    return added;
  }

  /** `code`: the close code the client was sent, when this side closed. */
  removeConnection(conn: Connection, code?: number): void {
    const s = this.registry.remove(conn);
    if (!s) return;
    if (this.tap.watched) this.tap.emit(conn.app.id, { type: 'connection_closed', socketId: conn.id, code });
    for (const name of [...conn.channels]) this.subscriptions.unsubscribe(conn, name);
    this.users.signOut(s, conn);
  }

  connection(appId: string, id: SocketId): Connection | undefined {
    return this.registry.get(appId, id);
  }

  connections(appId: string): IterableIterator<Connection> {
    return this.registry.all(appId);
  }

  connectionCountOf(appId: string): number {
    return this.registry.clusterCount(appId);
  }

  findConnections(appId: string, target: ConnectionTarget): Connection[] {
    return this.registry.find(appId, target);
  }

  // --- subscriptions (subscriptions.ts) and presence (presence.ts) ---

  subscribe(conn: Connection, name: string, member?: PresenceMember): SubscribeOutcome {
    const outcome = this.subscriptions.subscribe(conn, name, member);
    if (this.tap.watched) this.tap.emit(conn.app.id, { type: 'subscribed', socketId: conn.id, channel: name, detail: outcome.ok ? undefined : `refused: ${outcome.error}` });
    return outcome;
  }

  unsubscribe(conn: Connection, name: string): void {
    if (this.tap.watched && conn.channels.has(name)) this.tap.emit(conn.app.id, { type: 'unsubscribed', socketId: conn.id, channel: name });
    this.subscriptions.unsubscribe(conn, name);
  }

  memberUserId(conn: Connection, name: string): string | undefined {
    return this.presence.memberUserId(conn, name);
  }

  isMember(appId: string, channel: string, userId: string): boolean {
    return this.presence.isMember(appId, channel, userId);
  }

  presenceUserIds(appId: string, name: string): string[] {
    return this.presence.userIds(appId, name);
  }

  // --- users and watchlists (users.ts) ---

  signIn(conn: Connection, user: SignedInUser): void {
    this.users.signIn(conn, user);
  }

  userConnections(appId: string, userId: string): ReadonlySet<Connection> {
    return this.users.connectionsOf(appId, userId);
  }

  // --- publishing and delivery ---

  /**
   * Publishes through the bus, so every node (this one included) delivers it. An event on a
   * history channel is stored first, and goes out with the position the store gave it.
   */
  publish(app: App, message: ChannelMessage): void {
    this.apps.of(app.id).traffic.published += 1;
    if (this.tap.watched && message.kind === 'event') this.tapPublish(app.id, message);
    const limits = message.kind === 'event' ? this.history.limitsOf(app, message.channel) : null;
    if (limits === null || message.kind !== 'event') {
      this.bus.publish(app.id, message);
      return;
    }
    this.history.append(app, message, limits).then(
      (positioned) => this.bus.publish(app.id, positioned),
      // The store is unreachable: delivered live without a position (at most once, as any channel).
      () => this.bus.publish(app.id, message),
    );
  }

  /** Whether the channel keeps history, and how much. */
  historyLimits(app: App, channel: string): ReturnType<ChannelHistory['limitsOf']> {
    return this.history.limitsOf(app, channel);
  }

  /** A page of a channel's history (for the REST reads). */
  readHistory(app: App, channel: string, after: number | undefined, limit: number, newest: boolean): Promise<HistoryPage> | null {
    const limits = this.history.limitsOf(app, channel);
    return limits && this.history.read(app.id, channel, after, limit, limits, newest);
  }

  /**
   * After a subscribe to a history channel: replays what the connection missed since `since`
   * (told first through `tell`), then it is live. Resolves false when the channel keeps no history.
   */
  async resume(conn: Connection, channel: string, since: Position | undefined, tell: (outcome: ResumeOutcome) => void): Promise<boolean> {
    const limits = this.history.limitsOf(conn.app, channel);
    const ch = this.apps.get(conn.app.id)?.channels.get(channel);
    if (!limits || !ch?.subscribers.has(conn)) return false;
    await this.history.resume(conn.app, conn, ch, since, limits, tell);
    return true;
  }

  private tapPublish(appId: string, message: ChannelMessage & { kind: 'event' }): void {
    this.tap.emit(appId, {
      type: message.fromClient ? 'client_event' : 'api_message',
      channel: message.channel,
      event: message.event,
      data: typeof message.data === 'string' ? message.data : `(${message.data.length} bytes of binary)`,
      socketId: message.exceptSocketId,
    });
  }

  /** Users signed in anywhere in the cluster. */
  signedInUserIds(appId: string): string[] {
    const s = this.apps.get(appId);
    return s ? [...s.online.keys()] : [];
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
    if (message.kind === 'event' && !message.fromClient && (ch ? ch.kind.isCache : channelKind(message.channel).isCache)) this.cache.store(appId, message);
    if (!ch) return;
    if (message.kind === 'event' && message.position !== undefined) (ch.sequencer ??= new Sequencer<ChannelMessage>((m) => deliverOnChannel(ch, m))).accept(message, message.position);
    else fanOut(ch.subscribers, message, ch.traffic);
  }

  /**
   * Messages to a user reach all of that user's connections here, whether or not they
   * subscribed to the user channel and whichever protocol they speak; messages to a socket
   * reach that socket.
   */
  private deliverDirect(appId: string, target: { user: string } | { socket: string } | { all: true }, message: ChannelMessage): void {
    const s = this.apps.get(appId);
    if (!s) return;
    let targets: Iterable<Connection>;
    if ('user' in target) targets = s.users.get(target.user) ?? NO_CONNECTIONS;
    else if ('all' in target) targets = s.connections.values();
    else {
      const conn = s.connections.get(target.socket);
      targets = conn ? [conn] : [];
    }
    const session = message.kind === 'event' ? message.session : undefined;
    // Narrowed before the loop, so channel fan-out pays nothing for sessions.
    if (session !== undefined) targets = [...targets].filter((conn) => conn.user?.session === session);
    fanOut(targets, message, s.traffic);
  }

  // --- cluster commands (cluster-commands.ts) ---

  terminateUser(appId: string, userId: string): Promise<number> {
    return this.commands.terminateUser(appId, userId);
  }

  disconnect(appId: string, target: ConnectionTarget): Promise<number> {
    return this.commands.disconnect(appId, target);
  }

  describe(appId: string, target: ConnectionTarget): Promise<ConnectionSummary[]> {
    return this.commands.describe(appId, target);
  }

  /** Every live node's own numbers (connections, traffic, refusals), gathered over the bus. */
  nodeStats(): Promise<NodeStats[]> {
    return this.commands.stats();
  }

  private ownStats(): NodeStats {
    let published = 0;
    let delivered = 0;
    for (const s of this.apps.values()) {
      published += s.traffic.published;
      delivered += s.traffic.delivered;
    }
    const counters = { ...this.counters.totals(), ...this.nodeExtras() };
    return { node: this.ctx.self, healthy: this.bus.isHealthy, connections: this.registry.size, published, delivered, counters };
  }

  setMetadata(appId: string, target: ConnectionTarget, value: unknown): Promise<number> {
    return this.commands.setMetadata(appId, target, value);
  }

  execute(command: ClusterCommand): CommandResult {
    if (command.kind === 'app-changed') {
      this.onAppChanged(command.appId);
      return {};
    }
    if (command.kind === 'console-watch' || command.kind === 'console-entries') {
      this.tap.receive(command);
      return {};
    }
    return this.commands.execute(command);
  }

  /** Tells every node (this one too) that an app changed, and waits for their answers. */
  async announceAppChanged(appId: string): Promise<void> {
    await this.bus.request({ kind: 'app-changed', appId });
  }

  /**
   * An app's settings changed while it has connections here: they use the new ones from now
   * on (a rotated secret signs their next subscription); a disabled (or deleted) app's close.
   */
  updateApp(app: App | undefined, appId: string): void {
    for (const conn of [...this.connections(appId)]) {
      if (app?.enabled) conn.app = app;
      else conn.close('app_disabled');
    }
  }

  // --- REST reads (channel-reads.ts) ---

  channelInfo(appId: string, name: string): ChannelInfo {
    return this.reads.channelInfo(appId, name);
  }

  channels(appId: string, prefix = ''): Map<string, ChannelInfo> {
    return this.reads.channels(appId, prefix);
  }

  // --- other nodes' shares (cluster-state.ts) ---

  applyRemote(node: string, deltas: readonly StateDelta[], replace: boolean): void {
    this.cluster.applyRemote(node, deltas, replace);
  }

  dropNode(node: string, reportLeaves: boolean): void {
    this.cluster.dropNode(node, reportLeaves);
  }

  ownedState(): StateDelta[] {
    return this.cluster.ownedState();
  }
}

/** Fan-out on a history channel, where some subscribers may be catching up on a replay. */
function deliverOnChannel(ch: ChannelState, message: ChannelMessage): void {
  if (ch.catching === undefined || ch.catching.size === 0) {
    fanOut(ch.subscribers, message, ch.traffic);
    return;
  }
  const skip = routeCatching(ch, message);
  fanOut(skip.size === 0 ? ch.subscribers : [...ch.subscribers].filter((c) => !skip.has(c)), message, ch.traffic);
}
