import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { RequestTarget } from '../../util/request-target.js';
import { StandardCloseCode, type Admission, type LinkHandler, type QueuePolicy, type UpgradeRoute } from '../seam.js';
import type { WireStatsTable } from '../wire-stats.js';
import { WsLink } from './link.js';
import { destroyOnError, refuseUpgrade } from './refuse-upgrade.js';

export { refuseUpgrade };

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

/** The handler of a connection whose front-end failed to open it: it only waits to be closed. */
const DETACHED: LinkHandler = {
  onMessage: () => undefined,
  onIdle: () => undefined,
  onPongTimeout: () => undefined,
  onOverflow: () => undefined,
  onDropped: () => undefined,
  onClose: () => undefined,
};

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
      WebSocket: LinkedSocket,
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
    for (const link of this.links) link.close(StandardCloseCode.GoingAway, 'server closing');
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
        link.close(StandardCloseCode.InternalError, 'Internal error');
      }
      link.flushQueued();
      socket.uncork();
    });
  }

  /** Wires a socket to its link; the socket hands its events to the link itself (see LinkedSocket). */
  private attach(ws: WebSocket, socket: Duplex, protocol: string): WsLink {
    const { defaultQueuePolicy, wireStats } = this.options;
    const link = new WsLink(ws, socket, defaultQueuePolicy, wireStats, protocol);
    (ws as LinkedSocket).attach(link, this);
    this.links.add(link);
    return link;
  }

  reportError(err: unknown): void {
    this.options.onError(err);
  }

  /** Called once per socket when it has closed. */
  forget(link: WsLink, code: number, reason: string): void {
    link.countClose(code);
    this.links.delete(link);
    link.handler.onClose(code, reason);
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

/**
 * ws's socket, handing its events straight to our link. With a listener per event per socket
 * (message, ping, pong, error, close) every connection carried its own event-name dictionary
 * (~300 bytes of heap, measured with heap snapshots) and each handshake made five addListener
 * calls. ws lets a server choose its socket class (the `WebSocket` option) and raises every
 * event through `emit`, so the dispatch lives here, once, on the prototype. Until `attach`
 * (and for any other event) it behaves as a plain ws socket.
 */
class LinkedSocket extends WebSocket {
  private link: WsLink | undefined = undefined;
  private transport: WsTransport | undefined = undefined;

  attach(link: WsLink, transport: WsTransport): void {
    this.link = link;
    this.transport = transport;
  }

  // ws emits at most two arguments per event; naming them avoids a rest array per message.
  override emit(event: string | symbol, a?: unknown, b?: unknown): boolean {
    const { link, transport } = this;
    if (link === undefined || transport === undefined) return super.emit(event, a, b);
    switch (event) {
      case 'message':
        onSocketMessage(link, transport, a as Buffer, b as boolean);
        return true;
      case 'ping':
      case 'pong':
        link.touch(Date.now());
        return true;
      case 'error':
        // Bad frames and oversized messages are followed by 'close'; ws has already chosen the code.
        return true;
      case 'close':
        transport.forget(link, a as number, (b as Buffer).toString('utf8'));
        return true;
      default:
        return super.emit(event, a, b);
    }
  }
}

function onSocketMessage(link: WsLink, transport: WsTransport, data: Buffer, isBinary: boolean): void {
  link.touch(Date.now());
  link.stats.messagesIn += 1;
  link.stats.bytesIn += data.length;
  try {
    link.handler.onMessage(data, isBinary);
  } catch (err) {
    // A bug in a front-end costs this connection (1011), never the process and everyone else.
    transport.reportError(err);
    link.close(StandardCloseCode.InternalError, 'Internal error');
  }
}
