import { randomUUID } from 'node:crypto';
import type { BusSink, ClusterCommand, CommandResult, MessageBus } from '../core/bus.js';
import type { ChannelMessage } from '../core/message.js';
import type { StateDelta } from '../core/state-delta.js';
import type { Logger } from '../log.js';
import type { RefusalLog } from '../refusal-log.js';
import { decodeWire, encodeWire, ownMessagePrefix, type Envelope, type WireMessage } from './messages.js';
import { EngineProbe, EngineStartError } from './health.js';
import { ClusterStats } from './stats.js';
import type { ClusterEngine } from './engine.js';
import { ShardInterest, type InterestOptions } from './interest.js';
import { channelHash, everyNodeGets } from './routing.js';

export interface ClusterBusOptions {
  /** How often a node says it is alive. */
  heartbeatIntervalMs: number;
  /** Silence after which a node counts as dead and its share of the state is dropped. */
  nodeTimeoutMs: number;
  /** Bound on gathering answers from the other nodes. */
  requestTimeoutMs: number;
  /** Channel traffic is spread over this many topics (shards on Redis Cluster). */
  dataTopics: number;
  /** No echo of this node's own messages for this long: the engine is connected but not answering. */
  engineTimeoutMs: number;
  /** Bound on connecting to the engine at start. */
  startTimeoutMs: number;
  /**
   * Interest routing: a node subscribes to the shards of the channels it has subscribers in and
   * receives only those. Undefined: every node receives every channel message.
   */
  routing?: InterestOptions;
  /** Counts for the metrics; a private one when not given. */
  stats?: ClusterStats;
  /** Where timed-out requests are logged, throttled; each is logged at once when not given. */
  refusals?: RefusalLog;
}


const CONTROL = 'control';
/** With interest routing: what every node still receives (messages to a socket or to all connections, cache channels). */
const ALL = 'all';
const REQUEST_TIMED_OUT = 'cluster requests timed out; answered with what arrived';

interface PendingRequest {
  readonly missing: Set<string>;
  readonly results: CommandResult[];
  readonly resolve: (results: CommandResult[]) => void;
  readonly timer: NodeJS.Timeout;
  /** performance.now() when it was sent, for the round-trip metric. */
  readonly sentAt: number;
}

/**
 * Many nodes as one hub, over any engine. Every node receives every channel message (spread
 * over `dataTopics` topics by channel, so one channel's messages stay in order), or with
 * interest routing only the shards it has subscribers in (interest.ts), and keeps its
 * own copy of the cluster-wide counts from the other nodes' announcements. Control traffic
 * (state, heartbeats, commands) shares one topic, so each node's announcements arrive in the
 * order it made them. See docs/clustering.md for why delivery is routed this way.
 */
export class ClusterBus implements MessageBus {
  readonly nodeId = randomUUID();
  /** How every message this node encodes begins (see encodeWire). */
  private readonly ownPrefix = ownMessagePrefix(this.nodeId);
  private sink: BusSink | undefined;
  /** The transport's connection is up (see also `probe`: it may be up while the engine does not answer). */
  private healthy = false;
  private probe: EngineProbe | undefined;
  private readonly lastSeen = new Map<string, number>();
  private readonly pendingDeltas = new Map<string, StateDelta>();
  private flushScheduled = false;
  private readonly requests = new Map<string, PendingRequest>();
  private heartbeat: NodeJS.Timeout | undefined;
  private droppedMessages = 0;
  /** Sequence number of this node's control messages; a receiver that sees a gap missed something. */
  private seq = 0;
  private readonly lastSeq = new Map<string, number>();
  /** Nodes whose share this node may have missed (a gap, or first contact): asked for a snapshot every tick until one comes. */
  private readonly behind = new Set<string>();
  private readonly stats: ClusterStats;
  /** With interest routing: the shards this node is subscribed to. */
  readonly interest: ShardInterest | undefined;

  constructor(
    private readonly engine: ClusterEngine,
    private readonly options: ClusterBusOptions,
    private readonly log: Logger,
  ) {
    this.stats = options.stats ?? new ClusterStats();
    this.interest = options.routing && new ShardInterest(engine, options.routing, log);
  }

  get isHealthy(): boolean {
    return this.healthy && !this.probe?.frozen;
  }

  /** Other nodes currently known to be alive. */
  get peers(): string[] {
    return [...this.lastSeen.keys()];
  }

  async start(sink: BusSink): Promise<void> {
    this.sink = sink;
    const topics = this.interest ? [CONTROL, ALL] : [CONTROL, ...Array.from({ length: this.options.dataTopics }, (_, i) => `data.${i}`)];
    const starting = this.engine.start(topics, {
      message: (topic, bytes) => {
        if (topic !== CONTROL) this.stats.channelMessagesIn += 1;
        this.receive(bytes);
      },
      status: (up) => this.onStatus(up),
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new EngineStartError(`the cluster engine (${this.engine.name}) did not answer within ${this.options.startTimeoutMs} ms (startTimeoutMs)`)),
        this.options.startTimeoutMs,
      );
    });
    try {
      await Promise.race([starting, deadline]);
    } catch (err) {
      starting.catch(() => undefined);
      // Connections half made must not keep the process alive; closing waits on nothing that may hang.
      this.engine.close().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
    this.healthy = true;
    this.probe = new EngineProbe(this.options.engineTimeoutMs, Date.now());
    this.send({ t: 'hello' });
    this.heartbeat = setInterval(() => this.tick(), this.options.heartbeatIntervalMs);
    this.heartbeat.unref();
    this.log.info({ engine: this.engine.name, node: this.nodeId }, 'joined the cluster');
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.interest?.close();
    this.flush();
    if (this.healthy) this.send({ t: 'bye' });
    for (const request of this.requests.values()) {
      clearTimeout(request.timer);
      request.resolve(request.results);
    }
    this.requests.clear();
    await this.engine.close();
    this.sink = undefined;
  }

  publish(appId: string, message: ChannelMessage): void {
    this.sink?.deliver(appId, message);
    // An engine that does not answer gets nothing to hold: as during an outage, local delivery only.
    if (this.probe?.frozen) return;
    this.engine.publish(this.dataTopic(appId, message.channel), encodeWire(this.nodeId, { t: 'pub', a: appId, m: message }));
    this.stats.sent += 1;
  }

  /**
   * A channel got its first subscriber on this node. With interest routing, a promise when the
   * node must first subscribe to the channel's shard: the subscriber is told it is subscribed
   * once that settles, so nothing published after that misses this node. Undefined otherwise.
   */
  watch(appId: string, channel: string): Promise<void> | undefined {
    if (!this.interest || everyNodeGets(channel)) return undefined;
    const joined = this.interest.add(this.shardOf(appId, channel));
    // An engine that is down answers nothing: the node serves its own clients meanwhile.
    return this.isHealthy ? joined : undefined;
  }

  /** A channel lost its last subscriber on this node. */
  unwatch(appId: string, channel: string): void {
    if (!this.interest || everyNodeGets(channel)) return;
    this.interest.remove(this.shardOf(appId, channel));
  }

  /** Changes are coalesced per event-loop turn: the latest value per key goes out, once. */
  announce(delta: StateDelta): void {
    this.pendingDeltas.set(deltaKey(delta), delta);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  request(command: ClusterCommand): Promise<CommandResult[]> {
    const local = this.sink ? [this.sink.execute(command)] : [];
    const peers = this.peers;
    if (peers.length === 0 || !this.isHealthy) return Promise.resolve(local);
    const id = randomUUID();
    this.stats.requests += 1;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        const request = this.requests.get(id);
        if (!request) return;
        this.requests.delete(id);
        this.stats.requestTimeouts += 1;
        const fields = { missing: [...request.missing], command: command.kind };
        if (this.options.refusals) this.options.refusals.note('', REQUEST_TIMED_OUT, fields);
        else this.log.warn(fields, REQUEST_TIMED_OUT);
        resolve(request.results);
      }, this.options.requestTimeoutMs);
      timer.unref();
      this.requests.set(id, { missing: new Set(peers), results: local, resolve, timer, sentAt: performance.now() });
      this.send({ t: 'cmd', id, c: command });
    });
  }

  private dataTopic(appId: string, channel: string): string {
    if (!this.interest) return `data.${channelHash(appId, channel) % this.options.dataTopics}`;
    return everyNodeGets(channel) ? ALL : ShardInterest.topic(this.shardOf(appId, channel));
  }

  private shardOf(appId: string, channel: string): number {
    return channelHash(appId, channel) % (this.options.routing as InterestOptions).shards;
  }

  private send(message: WireMessage): void {
    if (this.probe?.frozen && message.t !== 'hb') return; // only the heartbeat probes a frozen engine
    this.seq += 1;
    this.engine.publish(CONTROL, encodeWire(this.nodeId, message, this.seq));
    this.stats.sent += 1;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pendingDeltas.size === 0) return;
    const d = [...this.pendingDeltas.values()];
    this.pendingDeltas.clear();
    this.send({ t: 'state', d });
  }

  private tick(): void {
    if (!this.healthy) return; // while the engine is away, silence from others proves nothing
    const probe = this.probe as EngineProbe;
    if (probe.check(Date.now())) {
      this.log.error({ engine: this.engine.name, afterMs: this.options.engineTimeoutMs }, 'the cluster engine stopped answering; serving local clients only');
    }
    this.send({ t: 'hb' }); // one per tick, also while frozen: its echo tells when the engine is back
    if (probe.frozen) return;
    if (this.behind.size > 0) this.send({ t: 'hello' }); // an earlier ask (or its answer) may have been lost too
    const deadline = Date.now() - this.options.nodeTimeoutMs;
    for (const [node, seen] of this.lastSeen) {
      if (seen >= deadline) continue;
      this.log.warn({ node }, 'node timed out; dropping its connections and presence');
      this.drop(node);
    }
  }

  /** A node died or said bye: its share goes, and its requests stop waiting for it. */
  private drop(node: string): void {
    this.forget(node);
    // A gone node cannot report the leaves its drop causes (what it closed itself before a bye
    // it reported, so then nothing is left); the surviving node with the lowest id does.
    const reporter = [...this.lastSeen.keys()].every((other) => this.nodeId < other);
    this.sink?.dropNode(node, reporter);
    this.forgetInRequests(node);
  }

  private onStatus(up: boolean): void {
    if (up === this.healthy) return;
    this.healthy = up;
    if (!up) {
      this.log.error({ engine: this.engine.name }, 'lost the cluster engine; serving local clients only');
      return;
    }
    this.probe?.reset(Date.now());
    this.interest?.retry();
    this.log.info({ engine: this.engine.name }, 'cluster engine is back; re-announcing this node');
    this.rejoin();
  }

  /** After an outage or a freeze: the others' silence was ours, and they may have missed this node's news. */
  private rejoin(): void {
    const now = Date.now();
    for (const node of this.lastSeen.keys()) this.lastSeen.set(node, now);
    this.send({ t: 'hello' });
    this.sendSnapshot(undefined);
  }

  private sendSnapshot(to: string | undefined): void {
    if (!this.sink) return;
    this.send({ t: 'state', d: this.sink.ownedState(), r: true, ...(to ? { to } : {}) });
  }

  private receive(bytes: Buffer): void {
    // The engine echoes this node's own messages back: recognise them by their opening bytes, unparsed.
    if (bytes.length > this.ownPrefix.length && bytes.subarray(0, this.ownPrefix.length).equals(this.ownPrefix)) {
      if (this.probe?.echoed(Date.now()) && this.healthy) {
        this.log.info({ engine: this.engine.name }, 'the cluster engine answers again; re-announcing this node');
        this.rejoin();
      }
      return;
    }
    const decoded = decodeWire(bytes);
    if (!decoded.ok) {
      this.droppedMessages += 1;
      if (this.droppedMessages === 1 || this.droppedMessages % 1000 === 0) {
        this.log.warn({ reason: decoded.reason, dropped: this.droppedMessages }, 'dropped cluster message');
      }
      return;
    }
    const e = decoded.envelope;
    if (e.o === this.nodeId || !this.sink) return;
    if (e.t === 'notice') {
      if (e.c?.kind === 'app-changed' && typeof e.c.appId === 'string') this.sink.execute(e.c);
      return;
    }
    this.stats.received += 1;
    const known = this.lastSeen.has(e.o);
    this.lastSeen.set(e.o, Date.now());
    if (e.s !== undefined) this.checkSequence(e, known);
    // A channel message, or a node of an older version: first contact still asks for its share.
    else if (!known && e.t !== 'hello' && !(e.t === 'state' && e.r)) this.send({ t: 'hello' });
    this.handle(e);
  }

  /**
   * Delivery is at most once, so a node can miss another's announcements: while the engine
   * restarts, or while its subscriptions are being restored (which an engine may report as
   * "up" before they are). A gap in the sender's control sequence, or a node heard from for the
   * first time, means its share here may be stale: ask for a snapshot until one arrives.
   */
  private checkSequence(e: Envelope, known: boolean): void {
    const previous = this.lastSeq.get(e.o);
    this.lastSeq.set(e.o, e.s as number);
    const snapshotForMe = e.t === 'state' && e.r === true && (e.to === undefined || e.to === this.nodeId);
    if (snapshotForMe) {
      this.behind.delete(e.o);
      return;
    }
    // A starting node says hello first and has nothing to tell yet.
    const missed = known ? previous !== undefined && e.s !== previous + 1 : e.t !== 'hello';
    if (!missed || this.behind.has(e.o)) return;
    this.behind.add(e.o);
    this.log.debug({ node: e.o, after: previous, got: e.s }, 'missed messages from a node; asking for its snapshot');
    this.send({ t: 'hello' });
  }

  private forget(node: string): void {
    this.lastSeen.delete(node);
    this.lastSeq.delete(node);
    this.behind.delete(node);
  }

  private handle(e: Envelope): void {
    const sink = this.sink as BusSink;
    switch (e.t) {
      case 'pub':
        sink.deliver(e.a, e.m);
        return;
      case 'state':
        if (e.to === undefined || e.to === this.nodeId) sink.applyRemote(e.o, e.d, e.r === true);
        return;
      case 'hello':
        this.sendSnapshot(e.o);
        return;
      case 'hb':
        return;
      case 'bye':
        this.drop(e.o);
        return;
      case 'cmd':
        this.send({ t: 'res', id: e.id, to: e.o, r: sink.execute(e.c) });
        return;
      case 'res': {
        if (e.to !== this.nodeId) return;
        const request = this.requests.get(e.id);
        if (!request || !request.missing.delete(e.o)) return;
        request.results.push(e.r);
        if (request.missing.size === 0) {
          this.stats.observeRoundTrip((performance.now() - request.sentAt) / 1000);
          this.finish(e.id, request);
        }
        return;
      }
    }
  }

  private forgetInRequests(node: string): void {
    for (const [id, request] of this.requests) {
      if (request.missing.delete(node) && request.missing.size === 0) this.finish(id, request);
    }
  }

  private finish(id: string, request: PendingRequest): void {
    clearTimeout(request.timer);
    this.requests.delete(id);
    request.resolve(request.results);
  }
}

function deltaKey(d: StateDelta): string {
  switch (d.kind) {
    case 'subscriptions':
      return `s\u0000${d.appId}\u0000${d.channel}`;
    case 'presence':
      return `p\u0000${d.appId}\u0000${d.channel}\u0000${d.userId}`;
    case 'user':
      return `u\u0000${d.appId}\u0000${d.userId}`;
    case 'connections':
      return `c\u0000${d.appId}`;
    case 'cache':
      return `k\u0000${d.appId}\u0000${d.message.channel}`;
  }
}
