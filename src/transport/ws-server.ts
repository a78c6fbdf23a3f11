import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { RequestTarget } from '../util/request-target.js';
import { frameText } from './frame.js';
import type { ClientLink, LinkHandler, QueuePolicy } from './link.js';
import { WireStatsTable, closeCodeLabel, type WireStats } from './wire-stats.js';
import { flushSoon, type Flushable } from './write-batcher.js';

export interface WsTransportOptions {
  maxMessageBytes: number;
  /** Until the front-end sets the app's own. */
  defaultQueuePolicy: QueuePolicy;
  activityTimeoutMs: number;
  /** The shortest silence a front-end will ask for with setPingAfter, so the sweep runs often enough. */
  shortestPingAfterMs: number;
  pongTimeoutMs: number;
  /** 0 = no limit. */
  maxConnectionsPerIp: number;
  /** 0 = no limit. */
  connectionAttemptsPerIpPerSecond: number;
  /** Counts attempts per IP (over the cluster when it is shared). */
  consumeAttempt: (ip: string, perSecond: number) => Promise<boolean>;
  /** Told about every upgrade refused before a front-end saw it. */
  onRefused: (reason: 'ip_limit' | 'rate') => void;
  /** An exception escaped a front-end's message handler (the connection is closed with 1011). */
  onError: (err: unknown) => void;
  /** A front-end's admission failed (a store it asked is down): the upgrade was answered 500. */
  onAdmissionError: (err: unknown) => void;
  /** Where links count their traffic, per app and protocol. */
  wireStats: WireStatsTable;
  /** The client's address (the TCP peer, or what trusted proxies report). */
  clientAddress: (req: IncomingMessage) => string;
}

export type Admission = { ok: true; state?: unknown } | { ok: false; status: number; body: Record<string, unknown>; retryAfter?: number };

/**
 * A front-end's claim on a URL path. `admit` runs before the handshake (origin checks,
 * authentication) and may refuse with an HTTP status; what it learns is handed to `open`.
 * A verdict known at once is returned as it is, so the handshake goes on in the same turn.
 */
export interface UpgradeRoute {
  /** The protocol's name in the metrics. */
  readonly protocol: string;
  matches(path: string): boolean;
  /** `clientAddress`: the client's IP (see WsTransportOptions.clientAddress), looked up when first asked. */
  admit?(req: IncomingMessage, url: RequestTarget, clientAddress: () => string): Admission | Promise<Admission>;
  open(link: ClientLink, req: IncomingMessage, url: RequestTarget, state: unknown): LinkHandler;
}

/** The handler of a connection whose front-end failed to open it: it only waits to be closed. */
const DETACHED: LinkHandler = {
  onMessage: () => undefined,
  onIdle: () => undefined,
  onPongTimeout: () => undefined,
  onOverflow: () => undefined,
  onDropped: () => undefined,
  onClose: () => undefined,
};

/** After a slow-consumer close frame, how long the client gets before the socket is cut. */
const CLOSE_GRACE_MS = 2_000;

/** One client socket as the front-ends see it: bounded queue, one write per turn. Exported for its unit test. */
export class WsLink implements ClientLink, Flushable {
  handler!: LinkHandler;
  /** Frames not yet handed to the socket: this turn's, or all while the socket needs to drain. */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  /**
   * What the socket still held unwritten when we last handed it frames. Until our next write it
   * only shrinks (but for ws's own control frames, a few bytes each), so it stands in for the
   * backlog without touching the socket per frame; a frame that seems not to fit re-reads the
   * socket before it is refused. With 10k subscribers, each object touched per recipient shows
   * in the fan-out rate.
   */
  private socketBacklog = 0;
  private flushScheduled = false;
  private awaitingDrain = false;
  private waitTimer: NodeJS.Timeout | undefined;
  lastActivityAt = Date.now();
  pingSentAt = 0;
  /** Silence after which this client is pinged; undefined: the transport's activity timeout. */
  pingAfterMs: number | undefined;
  /** The code of the close frame this server sent, if it sent one. */
  private sentCloseCode: number | undefined;
  /** Counts under no app until the front-end attributes the link. */
  stats: WireStats;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private policy: QueuePolicy,
    private readonly statsTable: WireStatsTable = new WireStatsTable(1),
    private readonly protocol = '',
  ) {
    this.stats = statsTable.for('', protocol);
  }

  attribute(appId: string): void {
    this.stats = this.statsTable.for(appId, this.protocol);
    this.stats.opened += 1;
  }

  /** Counts the close under its code: the one this server sent, or what the client sent (or ws chose). */
  countClose(code: number): void {
    const label = closeCodeLabel(this.sentCloseCode ?? code, this.sentCloseCode !== undefined);
    this.stats.closed.set(label, (this.stats.closed.get(label) ?? 0) + 1);
  }

  setQueuePolicy(policy: QueuePolicy): void {
    this.policy = policy;
  }

  setPingAfter(ms: number): void {
    this.pingAfterMs = ms;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  write(frame: Buffer): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    if (!this.fits(frame.length) && !this.fitsNow(frame.length)) {
      // Frames batched for this turn are no backlog while the socket keeps up (a burst of
      // publishes in one turn): hand them over now. Only a socket that needs draining overflows.
      if (this.awaitingDrain || this.socket.writableNeedDrain || this.queued.length === 0) return this.overflow();
      this.writeQueued(); // reads the socket's backlog afresh
      if (!this.fits(frame.length)) return this.overflow();
    }
    this.queued.push(frame);
    this.queuedBytes += frame.length;
    if (!this.flushScheduled && !this.awaitingDrain) {
      this.flushScheduled = true;
      flushSoon(this);
    }
    return true;
  }

  /** Bytes the kernel has not taken plus what waits here, and frames waiting here, stay within the bounds. */
  private fits(length: number): boolean {
    const { maxBytes, maxMessages } = this.policy;
    return this.socketBacklog + this.queuedBytes + length <= maxBytes && this.queued.length < maxMessages;
  }

  /** `fits` against the socket's backlog as it is now, before refusing a frame. */
  private fitsNow(length: number): boolean {
    this.socketBacklog = this.socket.writableLength;
    return this.fits(length);
  }

  /** Applies the policy to a frame that does not fit; returns false (the frame was not taken). */
  private overflow(): false {
    const { onFull, waitMs } = this.policy;
    if (onFull === 'close') {
      this.handler.onOverflow();
      return false;
    }
    this.handler.onDropped();
    if (onFull === 'wait' && !this.waitTimer) {
      this.waitTimer = setTimeout(() => {
        this.waitTimer = undefined;
        // Still backed up, give up on the client. Bytes the kernel would not take count too: a
        // queue smaller than the socket's own buffer never gets as far as waiting for a drain.
        if (this.awaitingDrain || this.socket.writableLength > 0) this.handler.onOverflow();
      }, waitMs);
      this.waitTimer.unref();
    }
    return false;
  }

  flushQueued(): void {
    this.flushScheduled = false;
    if (this.ws.readyState !== WebSocket.OPEN) {
      // Closed meanwhile (the client's close frame, answered by ws): nothing may follow a close frame.
      this.queued = [];
      this.queuedBytes = 0;
      return;
    }
    if (this.queued.length === 0 || this.socket.destroyed) return;
    // A client that reads slowly keeps its frames here, where the bounds can see them.
    if (this.socket.writableNeedDrain) {
      if (!this.awaitingDrain) {
        this.awaitingDrain = true;
        this.socket.once('drain', () => {
          this.awaitingDrain = false;
          this.flushQueued();
        });
      }
      return;
    }
    this.writeQueued();
  }

  private writeQueued(): void {
    if (this.queued.length === 0 || this.socket.destroyed) return;
    const frames = this.queued;
    const bytes = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    // Copying a turn's small frames into one buffer costs less than a write request per frame.
    this.socket.write(frames.length === 1 ? (frames[0] as Buffer) : joinFrames(frames, bytes));
    this.socketBacklog = this.socket.writableLength;
    this.stats.messagesOut += frames.length;
    this.stats.bytesOut += bytes;
  }

  sendText(text: string): boolean {
    return this.write(frameText(text));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    clearTimeout(this.waitTimer);
    // Queued frames go before the close frame, even to a backed-up socket (they are within the
    // bounds already): left queued, a later 'drain' would write them after the close frame.
    this.writeQueued();
    this.sentCloseCode = code;
    this.ws.close(code, reason);
    // ws waits 30 s for the client's close frame; a client that stopped reading gets less.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  terminate(): void {
    this.ws.terminate();
  }

  touch(now: number): void {
    this.lastActivityAt = now;
    this.pingSentAt = 0;
  }

  ping(now: number): void {
    this.pingSentAt = now;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.ping();
  }
}

/**
 * The last multi-frame join. Subscribers of one channel are flushed one after another and got
 * the very same frame buffers in the same order this turn, so they can share one joined copy:
 * a broadcast burst is then copied once per turn, not once per recipient.
 */
let lastJoinedFrames: Buffer[] = [];
let lastJoined = Buffer.alloc(0);

function joinFrames(frames: Buffer[], bytes: number): Buffer {
  if (frames.length === lastJoinedFrames.length) {
    let same = true;
    for (let i = 0; i < frames.length && same; i++) same = frames[i] === lastJoinedFrames[i];
    if (same) return lastJoined;
  }
  lastJoinedFrames = frames;
  lastJoined = Buffer.concat(frames, bytes);
  return lastJoined;
}

/**
 * The WebSocket side of the listener: upgrades sockets for the front-end whose route matches,
 * tracks liveness with one sweep for all connections (not a timer per socket), and frames and
 * batches writes (see write-batcher.ts).
 */
export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly links = new Set<WsLink>();
  private readonly perIp = new Map<string, number>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private accepting = true;

  constructor(
    private readonly routes: readonly UpgradeRoute[],
    private readonly options: WsTransportOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      clientTracking: false,
      maxPayload: options.maxMessageBytes,
    });
  }

  start(): void {
    const { activityTimeoutMs, shortestPingAfterMs, pongTimeoutMs } = this.options;
    const every = Math.min(Math.max(Math.min(activityTimeoutMs, shortestPingAfterMs, pongTimeoutMs) / 4, 250), 5_000);
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), every);
    this.sweepTimer.unref();
  }

  /** Stops taking new sockets; existing ones stay until their front-end closes them. */
  stopAccepting(): void {
    this.accepting = false;
  }

  close(): void {
    clearInterval(this.sweepTimer);
    for (const link of this.links) link.close(1001, 'server closing');
  }

  /** Resolves when every socket has closed, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.links.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** Terminates what is left after a drain. */
  terminateAll(): void {
    for (const link of this.links) link.terminate();
  }

  /**
   * Never throws: it runs in the HTTP server's 'upgrade' listener, where an exception would end
   * the process. A failure costs only this socket.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server stops listening for the socket's errors before 'upgrade', and ws only
    // starts once it takes the socket: a reset in between (while admission runs, or after a
    // refusal) would be an unhandled 'error' and end the process.
    socket.on('error', destroyOnError);
    try {
      this.upgrade(req, socket, head);
    } catch (err) {
      this.options.onError(err);
      socket.destroy();
    }
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = RequestTarget.parse(req.url ?? '/');
    if (!url) return refuseUpgrade(socket, 400, { error: 'Malformed URL' });
    const route = this.routes.find((r) => r.matches(url.pathname));
    if (!route) return refuseUpgrade(socket, 404, { error: 'Not Found' });
    if (!this.accepting) return refuseUpgrade(socket, 503, { error: 'Server shutting down' });
    // Looked up only for what needs it (per-IP limits, an auth webhook): it costs a getpeername
    // syscall per handshake.
    let ip: string | undefined;
    const clientAddress = (): string => (ip ??= this.options.clientAddress(req));
    const { maxConnectionsPerIp, connectionAttemptsPerIpPerSecond } = this.options;
    if (maxConnectionsPerIp > 0) {
      const address = clientAddress();
      const count = this.perIp.get(address) ?? 0;
      if (count >= maxConnectionsPerIp) {
        this.options.onRefused('ip_limit');
        return refuseUpgrade(socket, 429, { error: `Too many connections from this address (at most ${maxConnectionsPerIp})` });
      }
      // Counted from now until the socket closes: upgrades still waiting for admission hold
      // their place, or a burst of them would all get through a slow auth webhook.
      this.perIp.set(address, count + 1);
      socket.once('close', () => this.uncount(address));
    }
    const decide = (verdict: Admission): void => {
      if (socket.destroyed) return;
      // Admission may have outlasted the start of a shutdown, which must not wait for this client.
      if (!this.accepting) return refuseUpgrade(socket, 503, { error: 'Server shutting down' });
      if (verdict.ok) this.accept(route, req, socket, head, url, verdict.state);
      else refuseUpgrade(socket, verdict.status, verdict.body, verdict.retryAfter);
    };
    const failed = (err: unknown): void => {
      this.options.onAdmissionError(err);
      refuseUpgrade(socket, 500, { error: 'Internal Server Error' });
    };
    const routeVerdict = (): Admission | Promise<Admission> => (route.admit ? route.admit(req, url, clientAddress) : { ok: true });
    let verdict: Admission | Promise<Admission>;
    try {
      // Without a shared rate counter to ask, a route that knows at once needs no promise.
      verdict =
        connectionAttemptsPerIpPerSecond === 0
          ? routeVerdict()
          : this.options.consumeAttempt(clientAddress(), connectionAttemptsPerIpPerSecond).then((allowed) => (allowed ? routeVerdict() : this.refusedForRate()));
    } catch (err) {
      return failed(err);
    }
    if (verdict instanceof Promise) verdict.then(decide, failed);
    else decide(verdict);
  }

  private refusedForRate(): Admission {
    this.options.onRefused('rate');
    return { ok: false, status: 429, body: { error: 'Too many connection attempts from this address, slow down' }, retryAfter: 1 };
  }

  private uncount(address: string): void {
    const left = (this.perIp.get(address) ?? 1) - 1;
    if (left > 0) this.perIp.set(address, left);
    else this.perIp.delete(address);
  }

  private accept(route: UpgradeRoute, req: IncomingMessage, socket: Duplex, head: Buffer, url: RequestTarget, state: unknown): void {
    // The 101 response and the front-end's first frames (connection_established) leave in one write.
    socket.cork();
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('error', destroyOnError); // ws handles the socket's errors from here on
      const link = this.attach(ws, socket, route.protocol);
      try {
        link.handler = route.open(link, req, url, state);
      } catch (err) {
        // As with a message: a front-end bug costs this connection (1011), not the process.
        link.handler = DETACHED;
        this.options.onError(err);
        link.close(1011, 'Internal error');
      }
      link.flushQueued();
      socket.uncork();
    });
  }

  /**
   * Wires a socket to its link with listeners shared by all sockets, so a connection holds no
   * closures (and through them, no request or URL objects) of its own.
   */
  private attach(ws: WebSocket, socket: Duplex, protocol: string): WsLink {
    const { defaultQueuePolicy, wireStats } = this.options;
    const link = new WsLink(ws, socket, defaultQueuePolicy, wireStats, protocol);
    (ws as TaggedSocket)[kLink] = link;
    (ws as TaggedSocket)[kTransport] = this;
    this.links.add(link);
    ws.on('message', onSocketMessage);
    ws.on('pong', onSocketActivity);
    ws.on('ping', onSocketActivity);
    ws.on('error', onSocketError);
    ws.on('close', onSocketClose);
    return link;
  }

  reportError(err: unknown): void {
    this.options.onError(err);
  }

  /** Called once per socket when it has closed. */
  forget(link: WsLink, code: number): void {
    this.links.delete(link);
    link.countClose(code);
    link.handler.onClose();
  }

  private sweep(now: number): void {
    const { activityTimeoutMs, pongTimeoutMs } = this.options;
    for (const link of this.links) {
      if (link.pingSentAt === 0) {
        if (now - link.lastActivityAt >= (link.pingAfterMs ?? activityTimeoutMs)) {
          link.ping(now);
          link.handler.onIdle();
        }
      } else if (now - link.pingSentAt >= pongTimeoutMs) {
        link.handler.onPongTimeout();
      }
    }
  }
}

const kLink = Symbol('switchboard.link');
const kTransport = Symbol('switchboard.transport');
type TaggedSocket = WebSocket & { [kLink]: WsLink; [kTransport]: WsTransport };

function onSocketMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  const tagged = this as TaggedSocket;
  const link = tagged[kLink];
  link.touch(Date.now());
  link.stats.messagesIn += 1;
  link.stats.bytesIn += data.length;
  try {
    link.handler.onMessage(data, isBinary);
  } catch (err) {
    // A bug in a front-end costs this connection (1011), never the process and everyone else.
    tagged[kTransport].reportError(err);
    link.close(1011, 'Internal error');
  }
}

function onSocketActivity(this: WebSocket): void {
  (this as TaggedSocket)[kLink].touch(Date.now());
}

/** Bad frames and oversized messages are followed by 'close'; ws has already chosen the code. */
function onSocketError(): void {}

function onSocketClose(this: WebSocket, code: number): void {
  const tagged = this as TaggedSocket;
  tagged[kTransport].forget(tagged[kLink], code);
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** How long a refused upgrade's client gets to read the answer before its socket is closed. */
const REFUSAL_LINGER_MS = 1_000;

/**
 * Answers an upgrade with a plain HTTP error and closes the socket, also when the client keeps
 * its side open (a refusal must not hold a file descriptor, nor get round maxConnectionsPerIp).
 */
export function refuseUpgrade(socket: Duplex, status: number, json: Record<string, unknown>, retryAfter?: number): void {
  if (!socket.listeners('error').includes(destroyOnError)) socket.on('error', destroyOnError);
  if (socket.destroyed) return;
  const body = JSON.stringify(json);
  const extra = retryAfter === undefined ? '' : `Retry-After: ${retryAfter}\r\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${extra}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
