// A group of benchmark WebSocket connections living in one process. The same
// class runs in-process or inside a forked worker (bench/worker.ts), so the
// scenarios do not care where the sockets are.

import { schedSample, type SchedSample } from './proc-stats.js';
import { channelAuth } from './pusher-sign.js';
import {
  NEEDLES,
  PUSHER_PONG,
  contains,
  extractSocketId,
  findMarker,
  benchUser,
  nativeSubscribe,
  nativeUserJwt,
  nowUs,
  pusherPath,
  pusherSubscribe,
  pusherUnsubscribe,
  readTimestamp,
  type ProtocolName,
} from './protocol.js';
import { Histogram, type HistogramJSON } from './stats.js';
import { RawWsClient, type WsHandlers } from './ws-client.js';

/** sub: counts payloads; watcher: stays in a presence channel counting member events; churner: joins/leaves. */
export type ClientRole = 'sub' | 'watcher' | 'churner';

export interface OpenSpec {
  host: string;
  port: number;
  protocol: ProtocolName;
  appId: string;
  appKey: string;
  appSecret: string;
  nativePath: string;
  role: ClientRole;
  /** Global index range, so channel and source address choice is stable across workers. */
  firstIndex: number;
  count: number;
  /** Channel for index i: channelCount <= 1 ? prefix : `${prefix}-${i % channelCount}`. */
  channelPrefix: string;
  channelCount: number;
  sourceAddresses: string[];
  concurrency: number;
  connectTimeoutMs: number;
  nativeSettleMs: number;
  recordLatency: boolean;
  /** Native only: each connection signs in as benchUser(index) with a JWT made with this secret. */
  userJwtSecret?: string | undefined;
  /** Label for per-target accounting (e.g. which cluster node these connections use); see GroupStats.byTag. */
  tag?: string | undefined;
}

export interface OpenResult {
  opened: number;
  failed: number;
  firstError: string | undefined;
  /** connect → ready (subscribed) time per connection, µs. */
  handshake: HistogramJSON;
  elapsedMs: number;
}

/** Deliveries and latency of the connections opened with one OpenSpec.tag. */
export interface TagStats {
  delivered: number;
  latency: HistogramJSON | undefined;
}

export interface GroupStats {
  pid: number;
  open: number;
  delivered: number;
  latency: HistogramJSON | undefined;
  memberAdded: number;
  memberRemoved: number;
  joins: number;
  leaves: number;
  /** Connections that closed although we did not ask them to. */
  dropped: number;
  firstDropError: string | undefined;
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  /** This process's scheduler view (see proc-stats.ts). */
  sched: SchedSample | undefined;
  byTag: Record<string, TagStats>;
}

export interface ChurnSpec {
  durationMs: number;
  maxJoinsPerClient: number;
}

export interface ChurnResult {
  joins: number;
  leaves: number;
  /** Joins the server refused (subscription_error / pusher:error). */
  joinErrors: number;
  firstJoinError: string | undefined;
}

/** Anything that can host clients: in-process group or a forked worker. */
export interface ClientHost {
  open(spec: OpenSpec): Promise<OpenResult>;
  stats(): Promise<GroupStats>;
  reset(): Promise<void>;
  churn(spec: ChurnSpec): Promise<ChurnResult>;
  closeAll(): Promise<void>;
  dispose(): Promise<void>;
}

const enum State {
  Connecting,
  Established,
  Ready,
  Closing,
}

class BenchConn {
  state = State.Connecting;
  socketId = '';
  /** Cached presence auth message: socket_id, channel and user never change. */
  subscribeMsg = '';
  ws!: RawWsClient<BenchConn>;
  started = 0;
  resolveReady: ((ok: boolean, err?: string) => void) | undefined;
  churnJoinsLeft = 0;
  onChurnDone: (() => void) | undefined;

  constructor(
    readonly index: number,
    readonly role: ClientRole,
    readonly channel: string,
    readonly spec: OpenSpec,
    readonly tag: TagCounter | undefined,
  ) {}
}

class TagCounter {
  delivered = 0;
  readonly latency = new Histogram();
}

export class ClientGroup implements ClientHost {
  private conns = new Set<BenchConn>();
  private delivered = 0;
  private latency = new Histogram();
  private memberAdded = 0;
  private memberRemoved = 0;
  private joins = 0;
  private leaves = 0;
  private joinErrors = 0;
  private firstJoinError: string | undefined;
  private dropped = 0;
  private firstDropError: string | undefined;
  private churnDeadline = 0;
  private readonly tags = new Map<string, TagCounter>();
  /** Encoded subscribe messages of channels that need no auth, shared by all their connections. */
  private readonly publicSubscribe = new Map<string, Buffer>();

  private readonly handlers: WsHandlers<BenchConn> = {
    onOpen: (conn) => this.onOpen(conn),
    onText: (conn, buf, start, end, readAtUs) => this.onText(conn, buf, start, end, readAtUs),
    onClose: (conn, err) => this.onClose(conn, err),
  };

  async open(spec: OpenSpec): Promise<OpenResult> {
    const t0 = Date.now();
    const handshake = new Histogram();
    let opened = 0;
    let failed = 0;
    let firstError: string | undefined;
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < spec.count) {
        const i = spec.firstIndex + next++;
        const jwt = spec.protocol === 'native' && spec.userJwtSecret !== undefined ? await nativeUserJwt(spec.userJwtSecret, benchUser(i)) : undefined;
        const started = nowUs();
        const err = await this.openOne(spec, i, jwt);
        if (err === undefined) {
          opened++;
          handshake.record(nowUs() - started);
        } else {
          failed++;
          firstError ??= err;
        }
      }
    };
    const lanes = Math.max(1, Math.min(spec.concurrency, spec.count));
    await Promise.all(Array.from({ length: lanes }, worker));
    return { opened, failed, firstError, handshake: handshake.toJSON(), elapsedMs: Date.now() - t0 };
  }

  private openOne(spec: OpenSpec, index: number, jwt: string | undefined): Promise<string | undefined> {
    const channel = spec.channelCount <= 1 ? spec.channelPrefix : `${spec.channelPrefix}-${index % spec.channelCount}`;
    let tag: TagCounter | undefined;
    if (spec.tag !== undefined) {
      tag = this.tags.get(spec.tag);
      if (!tag) this.tags.set(spec.tag, (tag = new TagCounter()));
    }
    const conn = new BenchConn(index, spec.role, channel, spec, tag);
    const addrs = spec.sourceAddresses;
    let path =
      spec.protocol === 'pusher'
        ? pusherPath(spec.appKey)
        : spec.nativePath.replace('{appKey}', encodeURIComponent(spec.appKey));
    if (jwt !== undefined) path += `${path.includes('?') ? '&' : '?'}jwt=${jwt}`;
    conn.ws = new RawWsClient(
      { host: spec.host, port: spec.port, path, localAddress: addrs.length ? addrs[index % addrs.length] : undefined },
      this.handlers,
      conn,
    );
    this.conns.add(conn);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        conn.resolveReady = undefined;
        conn.state = State.Closing;
        conn.ws.destroy();
        resolve(`timeout after ${spec.connectTimeoutMs} ms`);
      }, spec.connectTimeoutMs);
      conn.resolveReady = (ok, err) => {
        clearTimeout(timer);
        conn.resolveReady = undefined;
        resolve(ok ? undefined : (err ?? 'failed'));
      };
      conn.ws.connect();
    });
  }

  private onOpen(conn: BenchConn): void {
    if (conn.spec.protocol === 'native') {
      // The native protocol has no subscribe ack: give the server a bounded
      // moment to register the subscription before calling it ready.
      conn.ws.sendText(nativeSubscribe(conn.channel));
      setTimeout(() => this.markReady(conn), conn.spec.nativeSettleMs);
    }
  }

  private markReady(conn: BenchConn): void {
    if (conn.state === State.Closing) return;
    conn.state = State.Ready;
    conn.resolveReady?.(true);
  }

  private fail(conn: BenchConn, err: string): void {
    conn.resolveReady?.(false, err);
    conn.state = State.Closing;
    conn.ws.destroy();
  }

  private subscribeMessage(conn: BenchConn): string {
    if (conn.subscribeMsg) return conn.subscribeMsg;
    if (conn.channel.startsWith('presence-')) {
      const channelData = JSON.stringify({ user_id: `${conn.role}-${conn.index}`, user_info: { bench: true } });
      const creds = { appId: conn.spec.appId, key: conn.spec.appKey, secret: conn.spec.appSecret };
      conn.subscribeMsg = pusherSubscribe(
        conn.channel,
        channelAuth(creds, conn.socketId, conn.channel, channelData),
        channelData,
      );
    } else if (conn.channel.startsWith('private-')) {
      const creds = { appId: conn.spec.appId, key: conn.spec.appKey, secret: conn.spec.appSecret };
      conn.subscribeMsg = pusherSubscribe(conn.channel, channelAuth(creds, conn.socketId, conn.channel));
    } else {
      conn.subscribeMsg = pusherSubscribe(conn.channel);
    }
    return conn.subscribeMsg;
  }

  private onText(conn: BenchConn, buf: Buffer, start: number, end: number, readAtUs: number): void {
    if (conn.state === State.Ready) {
      if (conn.role === 'sub') {
        // Hot path: one bounded search per delivered message.
        const at = findMarker(buf, start, end);
        if (at >= 0) {
          this.delivered++;
          const tag = conn.tag;
          if (tag) tag.delivered++;
          if (conn.spec.recordLatency) {
            // Receive time = when the read carrying the frame returned, taken before that read
            // was parsed (see ws-client.ts), so frames batched in one read are not charged
            // for each other's processing.
            const us = readAtUs - readTimestamp(buf, at, end);
            this.latency.record(us);
            tag?.latency.record(us);
          }
        } else if (conn.spec.protocol === 'pusher' && contains(buf, start, end, NEEDLES.ping)) {
          conn.ws.sendText(PUSHER_PONG);
        }
        return;
      }
      // Presence roles mostly receive member events (one per member per join or leave):
      // classify them with a single search.
      const view = buf.subarray(start, end);
      const m = view.indexOf(NEEDLES.member);
      if (m >= 0) {
        if (conn.role === 'watcher') {
          if (view[m + NEEDLES.member.length] === 0x61 /* a(dded) */) this.memberAdded++;
          else this.memberRemoved++;
        }
        return;
      }
      if (view.indexOf(NEEDLES.ping) >= 0) {
        conn.ws.sendText(PUSHER_PONG);
      } else if (conn.role === 'churner') {
        if (view.indexOf(NEEDLES.succeeded) >= 0) {
          this.joins++;
          this.churnStep(conn);
        } else if (view.indexOf(NEEDLES.subscriptionError) >= 0 || view.indexOf(NEEDLES.error) >= 0) {
          // e.g. the presence member limit (100 on Pusher): this churner stops instead of waiting forever.
          this.joinErrors++;
          this.firstJoinError ??= view.toString('utf8', 0, Math.min(view.length, 200));
          this.endChurn(conn);
        }
      }
      return;
    }
    if (conn.spec.protocol !== 'pusher') return;
    if (conn.state === State.Connecting) {
      if (contains(buf, start, end, NEEDLES.established)) {
        const socketId = extractSocketId(buf.toString('utf8', start, end));
        if (!socketId) return this.fail(conn, 'connection_established without socket_id');
        conn.socketId = socketId;
        conn.state = State.Established;
        // Churners connect now and join later, when churn() starts.
        if (conn.role === 'churner') return this.markReady(conn);
        if (conn.channel.startsWith('private-') || conn.channel.startsWith('presence-')) {
          conn.ws.sendText(this.subscribeMessage(conn));
        } else {
          let bytes = this.publicSubscribe.get(conn.channel);
          if (!bytes) this.publicSubscribe.set(conn.channel, (bytes = Buffer.from(pusherSubscribe(conn.channel))));
          conn.ws.sendTextBytes(bytes);
        }
      } else if (contains(buf, start, end, NEEDLES.error)) {
        this.fail(conn, `server error: ${buf.toString('utf8', start, Math.min(end, start + 200))}`);
      }
      return;
    }
    if (conn.state === State.Established) {
      if (contains(buf, start, end, NEEDLES.succeeded)) this.markReady(conn);
      else if (contains(buf, start, end, NEEDLES.subscriptionError) || contains(buf, start, end, NEEDLES.error))
        this.fail(conn, `subscribe refused: ${buf.toString('utf8', start, Math.min(end, start + 200))}`);
    }
  }

  private onClose(conn: BenchConn, err: Error | undefined): void {
    this.conns.delete(conn);
    if (conn.resolveReady) return this.fail(conn, err?.message ?? 'closed during handshake');
    if (conn.state !== State.Closing) {
      this.dropped++;
      this.firstDropError ??= err?.message ?? 'closed by server';
    }
    conn.onChurnDone?.();
  }

  /** After a join is acknowledged: leave, then join again while budget and time remain. */
  private churnStep(conn: BenchConn): void {
    conn.ws.sendText(pusherUnsubscribe(conn.channel));
    this.leaves++;
    if (--conn.churnJoinsLeft > 0 && Date.now() < this.churnDeadline) {
      conn.ws.sendText(this.subscribeMessage(conn));
    } else {
      this.endChurn(conn);
    }
  }

  private endChurn(conn: BenchConn): void {
    const done = conn.onChurnDone;
    conn.onChurnDone = undefined;
    done?.();
  }

  async churn(spec: ChurnSpec): Promise<ChurnResult> {
    this.churnDeadline = Date.now() + spec.durationMs;
    const churners = [...this.conns].filter((c) => c.role === 'churner' && c.state === State.Ready);
    const joins0 = this.joins;
    const leaves0 = this.leaves;
    const errors0 = this.joinErrors;
    // A server that never acks a join must not hang the run.
    let giveUp: NodeJS.Timeout | undefined;
    const hardStop = new Promise<void>((resolve) => {
      giveUp = setTimeout(resolve, spec.durationMs + 5000);
    });
    const allDone = Promise.all(
      churners.map(
        (conn) =>
          new Promise<void>((resolve) => {
            conn.churnJoinsLeft = spec.maxJoinsPerClient;
            conn.onChurnDone = resolve;
            conn.ws.sendText(this.subscribeMessage(conn));
          }),
      ),
    );
    await Promise.race([allDone, hardStop]);
    clearTimeout(giveUp);
    for (const c of churners) c.onChurnDone = undefined;
    return {
      joins: this.joins - joins0,
      leaves: this.leaves - leaves0,
      joinErrors: this.joinErrors - errors0,
      firstJoinError: this.firstJoinError,
    };
  }

  async stats(): Promise<GroupStats> {
    const cpu = process.cpuUsage();
    return {
      pid: process.pid,
      open: this.conns.size,
      delivered: this.delivered,
      latency: this.latency.count > 0 ? this.latency.toJSON() : undefined,
      memberAdded: this.memberAdded,
      memberRemoved: this.memberRemoved,
      joins: this.joins,
      leaves: this.leaves,
      dropped: this.dropped,
      firstDropError: this.firstDropError,
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssBytes: process.memoryUsage.rss(),
      sched: schedSample(process.pid),
      byTag: Object.fromEntries(
        [...this.tags].map(([name, t]) => [name, { delivered: t.delivered, latency: t.latency.count > 0 ? t.latency.toJSON() : undefined }]),
      ),
    };
  }

  async reset(): Promise<void> {
    this.delivered = 0;
    this.latency.reset();
    for (const t of this.tags.values()) {
      t.delivered = 0;
      t.latency.reset();
    }
    this.memberAdded = 0;
    this.memberRemoved = 0;
    this.joins = 0;
    this.leaves = 0;
    this.joinErrors = 0;
    this.firstJoinError = undefined;
  }

  async closeAll(): Promise<void> {
    const conns = [...this.conns];
    for (const c of conns) {
      c.state = State.Closing;
      c.ws.close();
    }
    const deadline = Date.now() + 3000;
    while (this.conns.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.conns) c.ws.destroy();
    this.conns.clear();
  }

  async dispose(): Promise<void> {
    await this.closeAll();
  }
}
