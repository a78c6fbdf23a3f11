// Publishes events over the server's HTTP API with keep-alive connections and
// several requests in flight, so REST round trips do not cap the event rate.
//
// The HTTP client is a small HTTP/1.1 one on raw sockets rather than node:http: at
// ~70 µs of CPU per request, http.request saturated the load generator's core before
// the server in the channels scenario, so the benchmark measured the client.

import { connect, type Socket } from 'node:net';
import type { Target } from './loopback.js';
import { PUSHER_EVENT_NAME, nowUs, type ProtocolName } from './protocol.js';
import { signedPath, type AppCredentials } from './pusher-sign.js';
import { Histogram } from './stats.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** How often outstanding requests are checked against REQUEST_TIMEOUT_MS: one timer for all
 * requests instead of one per request, at the price of timing out up to this much late. */
const TIMEOUT_SWEEP_MS = 1_000;
/** A response head larger than this is not an HTTP API answer; give up on the socket. */
const MAX_HEAD_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
/** Pusher's documented limit for batch_events. */
export const MAX_BATCH = 10;

export interface PublishEvent {
  channel: string;
  data: string;
  /** With `send`: the user POST /send addresses (the channel is then only the client's label). */
  user?: string;
}

export interface PublisherConfig {
  target: Target;
  protocol: ProtocolName;
  creds: AppCredentials;
  /** Bearer token for the native POST /broadcast API; empty = sign it like a Pusher request. */
  token: string;
  /** Native: publish with POST /send to each event's user instead of /broadcast to its channel. */
  send: boolean;
  concurrency: number;
}

export interface PublisherStats {
  requests: number;
  events: number;
  failedRequests: number;
  statusCounts: Record<string, number>;
  firstError: string | undefined;
  socketsOpened: number;
  /** HTTP round trip per request, µs. */
  rtt: Histogram;
  /** Fixed-rate mode: ticks where all request slots were busy and the schedule slipped. */
  lateTicks: number;
  /** Fixed-rate mode: how late each request left against its due time, µs (timer lateness). */
  scheduleLag: Histogram;
}

/** One request: its complete bytes (head + body) and who waits for the answer. */
interface PendingRequest {
  readonly bytes: string;
  readonly events: number;
  readonly resolve: (ok: boolean) => void;
  /** nowUs() just before the write; rtt and the timeout count from here. */
  sentAt: number;
}

export class Publisher {
  private readonly pool: Pool;
  private readonly hostHeader: string;
  private inFlight = 0;
  readonly stats: PublisherStats = {
    requests: 0,
    events: 0,
    failedRequests: 0,
    statusCounts: {},
    firstError: undefined,
    socketsOpened: 0,
    rtt: new Histogram(),
    lateTicks: 0,
    scheduleLag: new Histogram(),
  };

  constructor(private readonly cfg: PublisherConfig) {
    this.hostHeader = cfg.target.origin.replace(/^http:\/\//, '');
    this.pool = new Pool(cfg.target, cfg.concurrency, {
      opened: () => this.stats.socketsOpened++,
      complete: (req, ok, status, err) => this.complete(req, ok, status, err),
    });
  }

  /** One event → single publish; several → one batch request (Pusher batch_events). */
  send(events: PublishEvent[]): Promise<boolean> {
    let path: string;
    let body: string;
    let auth = '';
    let contentType = 'application/json';
    if (this.cfg.protocol === 'native' && this.cfg.send) {
      const e = events[0];
      if (events.length !== 1 || e.user === undefined) throw new Error('POST /send takes one event with a user');
      body = e.data;
      contentType = 'text/plain';
      const params = { type: 'text', user: e.user };
      if (this.cfg.token) {
        path = `/send?type=text&user=${e.user}`;
        auth = `Authorization: Bearer ${this.cfg.token}\r\n`;
      } else {
        path = signedPath(this.cfg.creds, 'POST', '/send', body, undefined, params);
      }
    } else if (this.cfg.protocol === 'native') {
      if (events.length !== 1) throw new Error('the native protocol has no batch publish');
      body = JSON.stringify({ channel: events[0].channel, data: events[0].data });
      if (this.cfg.token) {
        path = '/broadcast';
        auth = `Authorization: Bearer ${this.cfg.token}\r\n`;
      } else {
        // Switchboard's native API also takes a Pusher signature, so no token is needed.
        path = signedPath(this.cfg.creds, 'POST', '/broadcast', body);
      }
    } else if (events.length === 1) {
      const e = events[0];
      body = JSON.stringify({ name: PUSHER_EVENT_NAME, channels: [e.channel], data: e.data });
      path = signedPath(this.cfg.creds, 'POST', `/apps/${this.cfg.creds.appId}/events`, body);
    } else {
      body = JSON.stringify({
        batch: events.map((e) => ({ name: PUSHER_EVENT_NAME, channel: e.channel, data: e.data })),
      });
      path = signedPath(this.cfg.creds, 'POST', `/apps/${this.cfg.creds.appId}/batch_events`, body);
    }
    // One string, so the request leaves in one write and (with noDelay) one segment.
    const bytes =
      `POST ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nContent-Type: ${contentType}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${auth}\r\n${body}`;
    this.inFlight++;
    return new Promise<boolean>((resolve) => {
      this.pool.dispatch({ bytes, events: events.length, resolve, sentAt: 0 });
    });
  }

  /** As fast as the server answers, with `concurrency` requests in flight. */
  async runMaxRate(opts: { durationMs: number; maxEvents: number; next: () => PublishEvent[] }): Promise<void> {
    const deadline = Date.now() + opts.durationMs;
    let issued = 0;
    const lane = async (): Promise<void> => {
      while (Date.now() < deadline && issued < opts.maxEvents) {
        const batch = opts.next();
        issued += batch.length;
        await this.send(batch);
      }
    };
    await Promise.all(Array.from({ length: this.cfg.concurrency }, lane));
  }

  /**
   * `rate` events per second, scheduled against the clock so slow responses do not lower the
   * rate silently: event k (0-based) is due at t0 + k/rate, and a timer that wakes late sends
   * what is due at once (the lag is recorded in stats.scheduleLag) without shifting later events.
   */
  async runFixedRate(opts: { rate: number; durationMs: number; maxEvents: number; next: () => PublishEvent[] }): Promise<void> {
    const periodMs = 1000 / opts.rate;
    const t0 = performance.now();
    let sent = 0;
    const pending = new Set<Promise<boolean>>();
    while (sent < opts.maxEvents) {
      const elapsed = performance.now() - t0;
      if (elapsed >= opts.durationMs) break;
      const due = Math.min(opts.maxEvents, Math.floor(elapsed / periodMs) + 1);
      let slotsFull = false;
      while (sent < due) {
        if (this.inFlight >= this.cfg.concurrency) {
          this.stats.lateTicks++;
          slotsFull = true;
          break;
        }
        this.stats.scheduleLag.record((performance.now() - (t0 + sent * periodMs)) * 1000);
        const batch = opts.next();
        sent += batch.length;
        const p = this.send(batch);
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      if (slotsFull) {
        // Behind schedule with every slot busy: wait for an answer, not a 1 ms poll (which
        // would burn the load generator's core exactly when the server is slow).
        await Promise.race(pending);
        continue;
      }
      // Wake when the next event is due (timers fire up to ~1 ms late; that is lag, not drift).
      const wait = t0 + sent * periodMs - performance.now();
      await sleep(Math.min(50, Math.max(1, wait)));
    }
    await Promise.all(pending);
  }

  close(): void {
    this.pool.close();
  }

  private complete(req: PendingRequest, ok: boolean, status: string, err: string | undefined): void {
    this.inFlight--;
    this.stats.requests++;
    this.stats.statusCounts[status] = (this.stats.statusCounts[status] ?? 0) + 1;
    if (ok) {
      this.stats.events += req.events;
      this.stats.rtt.record(nowUs() - req.sentAt);
    } else {
      this.stats.failedRequests++;
      this.stats.firstError ??= err;
    }
    req.resolve(ok);
  }
}

interface PoolHooks {
  opened(): void;
  /** Called exactly once per request, whatever the outcome. */
  complete(req: PendingRequest, ok: boolean, status: string, err: string | undefined): void;
}

/** Up to `size` keep-alive sockets, opened on demand, each carrying one request at a time. */
class Pool {
  /** Every open socket, busy or idle. */
  private readonly conns = new Set<Connection>();
  private readonly idle: Connection[] = [];
  /** Requests sent while every socket was busy (only when a caller exceeds `concurrency`). */
  private readonly queue: PendingRequest[] = [];
  private sweep: NodeJS.Timeout | undefined;

  constructor(
    private readonly target: Target,
    private readonly size: number,
    readonly hooks: PoolHooks,
  ) {}

  close(): void {
    if (this.sweep !== undefined) clearInterval(this.sweep);
    this.sweep = undefined;
    // Queued requests would otherwise wait for a socket that nobody opens.
    for (const req of this.queue.splice(0)) this.hooks.complete(req, false, 'error', 'publisher closed');
    for (const conn of this.conns) conn.socket.destroy(new Error('publisher closed'));
  }

  /** A connection finished its request and may take the next. */
  release(conn: Connection): void {
    if (conn.closeAfter) {
      // Out of the pool at once, so a queued request can open its replacement now.
      this.drop(conn);
      conn.socket.destroy();
      return;
    }
    const next = this.queue.shift();
    if (next !== undefined) conn.issue(next);
    else this.idle.push(conn);
  }

  /** A connection is gone (closed by either side, or given up); idempotent. */
  drop(conn: Connection): void {
    if (!this.conns.delete(conn)) return;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    const next = this.queue.shift();
    if (next !== undefined) this.dispatch(next);
  }

  dispatch(req: PendingRequest): void {
    let conn = this.idle.pop();
    // An idle socket the server has just half-closed would fail the request; its 'close' is
    // on the way, so take it out of the pool now and use another.
    while (conn !== undefined && !conn.socket.writable) {
      this.drop(conn);
      conn = this.idle.pop();
    }
    if (conn === undefined && this.conns.size < this.size) conn = this.open();
    if (conn === undefined) this.queue.push(req);
    else conn.issue(req);
  }

  private open(): Connection {
    const socket = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    this.hooks.opened();
    const conn = new Connection(socket, this);
    this.conns.add(conn);
    if (this.sweep === undefined) {
      this.sweep = setInterval(() => this.expire(), TIMEOUT_SWEEP_MS);
      this.sweep.unref();
    }
    return conn;
  }

  private expire(): void {
    const limit = nowUs() - REQUEST_TIMEOUT_MS * 1000;
    for (const conn of this.conns) {
      const req = conn.current;
      if (req !== undefined && req.sentAt < limit) conn.socket.destroy(new Error('request timeout'));
    }
  }
}

/** How the body of the response being read ends (RFC 9112 §6.3). */
type BodyFraming = 'length' | 'chunked' | 'close';

/**
 * One keep-alive socket carrying one request at a time (no pipelining, so a response
 * always belongs to `current`). Responses are parsed only as far as the publisher needs:
 * status, framing (Content-Length, chunked, or until close) and Connection: close.
 */
class Connection {
  current: PendingRequest | undefined;
  /** The server asked to close, or framing cannot be trusted: do not reuse this socket. */
  closeAfter = false;
  /** Unparsed bytes of the current response; after the head, starts at the body. */
  private buf: Buffer = EMPTY;
  /** undefined while the head is still being read. */
  private framing: BodyFraming | undefined;
  private status = 0;
  private contentLength = 0;
  /** Chunked: offset in buf of the next chunk-size line, and the chunks' data so far. */
  private chunkCursor = 0;
  private chunks: Buffer[] = [];
  private error: Error | undefined;

  constructor(
    readonly socket: Socket,
    private readonly pool: Pool,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e: Error) => {
      this.error ??= e;
    });
    socket.on('close', () => this.onClose());
  }

  issue(req: PendingRequest): void {
    this.current = req;
    req.sentAt = nowUs();
    // Before 'connect' net buffers this and sends it once connected, so a fresh socket's
    // first request includes the handshake in its rtt, as with node:http.
    this.socket.write(req.bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.current === undefined) {
      // Bytes nobody asked for: the next response could not be told apart from them.
      this.socket.destroy(new Error('unsolicited data from the server'));
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    while (this.framing === undefined) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.buf.length > MAX_HEAD_BYTES) this.socket.destroy(new Error('response head too large'));
        return;
      }
      const err = this.parseHead(this.buf.toString('latin1', 0, end));
      this.buf = this.buf.subarray(end + 4);
      if (err !== undefined) {
        this.socket.destroy(new Error(err));
        return;
      }
      // framing still undefined = a 1xx interim response; the final one follows.
    }
    let end: number;
    if (this.framing === 'length') end = this.buf.length >= this.contentLength ? this.contentLength : -1;
    else if (this.framing === 'chunked') end = this.chunkedEnd();
    else return; // ends when the server closes
    if (end < 0) return; // incomplete, or malformed and the socket destroyed
    // Anything after the response was never asked for, so framing is lost on this socket.
    if (this.buf.length > end) this.closeAfter = true;
    this.finish(end);
  }

  /** Returns an error message, or undefined with framing set (final response) or not (1xx). */
  private parseHead(head: string): string | undefined {
    const lines = head.split('\r\n');
    const statusLine = lines[0] ?? '';
    const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(statusLine);
    if (m === null) return `malformed HTTP status line: ${JSON.stringify(statusLine.slice(0, 100))}`;
    const status = Number(m[2]);
    if (status === 101) return 'unexpected 101 Switching Protocols';
    if (status < 200) return undefined;
    let length: number | undefined;
    let transferEncoding: string | undefined;
    let close = false;
    let keepAlive = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value) || (length !== undefined && length !== Number(value)))
          return `invalid Content-Length: ${JSON.stringify(value)}`;
        length = Number(value);
      } else if (name === 'transfer-encoding') {
        transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      } else if (name === 'connection') {
        for (const token of value.split(',')) {
          const t = token.trim();
          if (t === 'close') close = true;
          else if (t === 'keep-alive') keepAlive = true;
        }
      }
    }
    this.status = status;
    // HTTP/1.0 connections are persistent only when the server says so.
    this.closeAfter = close || (m[1] === '0' && !keepAlive);
    this.chunkCursor = 0;
    this.chunks = [];
    if (status === 204 || status === 304) {
      this.framing = 'length';
      this.contentLength = 0;
    } else if (transferEncoding !== undefined) {
      // Transfer-Encoding overrides Content-Length; chunked must be the last coding, and
      // any other last coding means the body runs until the server closes.
      const last = transferEncoding.split(',').pop()!.trim();
      this.framing = last === 'chunked' ? 'chunked' : 'close';
    } else if (length !== undefined) {
      this.framing = 'length';
      this.contentLength = length;
    } else {
      this.framing = 'close';
    }
    if (this.framing === 'close') this.closeAfter = true;
    return undefined;
  }

  /** Offset just past the end of a complete chunked body in buf, -1 if incomplete, -2 if malformed. */
  private chunkedEnd(): number {
    const buf = this.buf;
    for (;;) {
      const eol = buf.indexOf('\r\n', this.chunkCursor);
      if (eol < 0) return -1;
      // parseInt stops at a chunk extension (";name=value"), which we ignore.
      const sizeText = buf.toString('latin1', this.chunkCursor, eol).trim();
      const size = /^[0-9a-f]+/i.test(sizeText) ? parseInt(sizeText, 16) : NaN;
      if (!Number.isSafeInteger(size)) {
        this.socket.destroy(new Error(`malformed chunk size: ${JSON.stringify(sizeText.slice(0, 40))}`));
        return -2;
      }
      if (size === 0) {
        // The last chunk is followed by optional trailer lines and an empty line; searching
        // from its CRLF finds "\r\n\r\n" right away when there are no trailers.
        const t = buf.indexOf('\r\n\r\n', eol);
        return t < 0 ? -1 : t + 4;
      }
      const next = eol + 2 + size + 2;
      if (buf.length < next) return -1;
      this.chunks.push(buf.subarray(eol + 2, eol + 2 + size));
      this.chunkCursor = next;
    }
  }

  /** The current response is complete; its body is buf[0, bodyEnd) (or the chunks). */
  private finish(bodyEnd: number): void {
    const req = this.current!;
    const status = this.status;
    const ok = status >= 200 && status < 300;
    let err: string | undefined;
    if (!ok) {
      const body = this.framing === 'chunked' ? Buffer.concat(this.chunks) : this.buf.subarray(0, bodyEnd);
      err = `HTTP ${status} ${body.toString('utf8', 0, Math.min(body.length, 1200)).slice(0, 300)}`;
    }
    this.current = undefined;
    this.buf = EMPTY;
    this.framing = undefined;
    this.chunks = [];
    this.pool.hooks.complete(req, ok, String(status), err);
    this.pool.release(this);
  }

  private onClose(): void {
    if (this.current !== undefined) {
      if (this.framing === 'close' && this.error === undefined) {
        this.finish(this.buf.length);
      } else {
        const req = this.current;
        this.current = undefined;
        this.pool.hooks.complete(req, false, 'error', this.error?.message ?? 'connection closed before the response was complete');
      }
    }
    this.pool.drop(this);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
