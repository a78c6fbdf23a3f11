import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { frameText } from './frame.js';
import type { ClientLink, LinkHandler } from './link.js';
import { flushSoon, type Flushable } from './write-batcher.js';

export interface WsTransportOptions {
  maxMessageBytes: number;
  maxSocketBufferBytes: number;
  activityTimeoutMs: number;
  pongTimeoutMs: number;
}

export type Admission = { ok: true; state?: unknown } | { ok: false; status: number; body: Record<string, unknown> };

/**
 * A front-end's claim on a URL path. `admit` runs before the handshake (origin checks,
 * authentication) and may refuse with an HTTP status; what it learns is handed to `open`.
 */
export interface UpgradeRoute {
  matches(path: string): boolean;
  admit?(req: IncomingMessage, url: URL): Promise<Admission>;
  open(link: ClientLink, req: IncomingMessage, url: URL, state: unknown): LinkHandler;
}

/** After a slow-consumer close frame, how long the client gets before the socket is cut. */
const CLOSE_GRACE_MS = 2_000;

class WsLink implements ClientLink, Flushable {
  handler!: LinkHandler;
  /** Frames written this turn, sent together by flushQueued(). */
  private queued: Buffer[] = [];
  private queuedBytes = 0;
  lastActivityAt = Date.now();
  pingSentAt = 0;
  readonly remoteAddress: string;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly maxBuffered: number,
    remoteAddress: string | undefined,
  ) {
    this.remoteAddress = remoteAddress ?? '';
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  write(frame: Buffer): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    // What the kernel has not taken yet plus what waits for this turn's flush.
    if (this.socket.writableLength + this.queuedBytes + frame.length > this.maxBuffered) {
      this.handler.onOverflow();
      return false;
    }
    if (this.queued.length === 0) flushSoon(this);
    this.queued.push(frame);
    this.queuedBytes += frame.length;
    return true;
  }

  flushQueued(): void {
    if (this.queued.length === 0) return;
    const frames = this.queued;
    const bytes = this.queuedBytes;
    this.queued = [];
    this.queuedBytes = 0;
    if (this.socket.destroyed) return;
    // Copying a turn's small frames into one buffer costs less than a write request per frame.
    this.socket.write(frames.length === 1 ? (frames[0] as Buffer) : Buffer.concat(frames, bytes));
  }

  sendText(text: string): boolean {
    return this.write(frameText(text));
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.flushQueued(); // queued frames go before the close frame
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
 * The WebSocket side of the listener: upgrades sockets for the front-end whose route matches,
 * tracks liveness with one sweep for all connections (not a timer per socket), and frames and
 * batches writes (see write-batcher.ts).
 */
export class WsTransport {
  private readonly wss: WebSocketServer;
  private readonly links = new Set<WsLink>();
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

  get connectionCount(): number {
    return this.links.size;
  }

  start(): void {
    const every = Math.min(Math.max(Math.min(this.options.activityTimeoutMs, this.options.pongTimeoutMs) / 4, 250), 5_000);
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

  /** Terminates what is left after a drain. */
  terminateAll(): void {
    for (const link of this.links) link.terminate();
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = this.routes.find((r) => r.matches(url.pathname));
    if (!route) return refuse(socket, 404, { error: 'Not Found' });
    if (!this.accepting) return refuse(socket, 503, { error: 'Server shutting down' });
    if (!route.admit) return this.accept(route, req, socket, head, url, undefined);
    route.admit(req, url).then(
      (verdict) => {
        if (socket.destroyed) return;
        if (verdict.ok) this.accept(route, req, socket, head, url, verdict.state);
        else refuse(socket, verdict.status, verdict.body);
      },
      () => refuse(socket, 500, { error: 'Internal Server Error' }),
    );
  }

  private accept(route: UpgradeRoute, req: IncomingMessage, socket: Duplex, head: Buffer, url: URL, state: unknown): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      const link = new WsLink(ws, socket, this.options.maxSocketBufferBytes, req.socket.remoteAddress);
      this.links.add(link);
      ws.on('message', (data, isBinary) => {
        link.touch(Date.now());
        link.handler.onMessage(data as Buffer, isBinary);
      });
      ws.on('pong', () => link.touch(Date.now()));
      ws.on('ping', () => link.touch(Date.now()));
      // Errors (bad frames, oversized messages) are followed by 'close'; ws already chose the code.
      ws.on('error', () => undefined);
      ws.on('close', () => {
        this.links.delete(link);
        link.handler.onClose();
      });
      link.handler = route.open(link, req, url, state);
    });
  }

  private sweep(now: number): void {
    const { activityTimeoutMs, pongTimeoutMs } = this.options;
    for (const link of this.links) {
      if (link.pingSentAt === 0) {
        if (now - link.lastActivityAt >= activityTimeoutMs) {
          link.ping(now);
          link.handler.onIdle();
        }
      } else if (now - link.pingSentAt >= pongTimeoutMs) {
        link.handler.onPongTimeout();
      }
    }
  }
}

function refuse(socket: Duplex, status: number, json: Record<string, unknown>): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(json);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
