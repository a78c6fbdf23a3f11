import type { IncomingMessage, ServerResponse } from 'node:http';
import { SignJWT } from 'jose';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';

/** Helpers for the native protocol (/ws, /connect) and the native HTTP API. */

export interface Frame {
  readonly binary: boolean;
  readonly data: Buffer;
  /** The payload as UTF-8 text. */
  readonly text: string;
}

/** A plain WebSocket client of the native protocol: every frame kept, text or binary. */
export class NativeClient {
  readonly frames: Frame[] = [];
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
      this.frames.push({ binary: isBinary, data: buf, text: buf.toString('utf8') });
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = String(reason);
        this.wake();
        resolve(code);
      });
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Text payloads received so far, in order. */
  get texts(): string[] {
    return this.frames.filter((f) => !f.binary).map((f) => f.text);
  }

  /** Text frames that parse as JSON objects. */
  get json(): Array<Record<string, unknown>> {
    return jsonObjects(this.texts);
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Waits until `pred` holds over the frames received so far (from the start of the connection). */
  async until<T>(pred: () => T | undefined | false, timeoutMs = 3000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pred();
      if (found !== undefined && found !== false) return found;
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode} ${this.closeReason}) while waiting; got ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms; got ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The first frame (from the start) matching `pred`. */
  frame(pred: (f: Frame) => boolean, timeoutMs?: number): Promise<Frame> {
    return this.until(() => this.frames.find(pred), timeoutMs);
  }

  /** The first text frame equal to `text`. */
  text(text: string): Promise<Frame> {
    return this.frame((f) => !f.binary && f.text === text);
  }

  /** The first JSON object frame matching `pred`. */
  message(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.until(() => this.json.find(pred), timeoutMs);
  }

  /** The first error frame with this code (and channel, if given). */
  error(code: string, channel?: string): Promise<Record<string, unknown>> {
    return this.message((m) => m.type === 'error' && m.code === code && (channel === undefined || m.channel === channel));
  }

  /** The first ack of this type for `channel`. */
  ack(type: 'subscribed' | 'unsubscribed', channel: string): Promise<Record<string, unknown>> {
    return this.message((m) => m.type === type && m.channel === channel);
  }

  /**
   * A round trip: sends a ping and waits for its pong. Everything the server wrote to this
   * socket before reading the ping has arrived once this resolves.
   */
  async sync(): Promise<void> {
    const want = this.json.filter((m) => m.type === 'pong').length + 1;
    this.send({ action: 'ping' });
    await this.until(() => this.json.filter((m) => m.type === 'pong').length >= want);
  }

  /** Frames other than pongs, acks and errors: the deliveries. */
  get deliveries(): Frame[] {
    return this.frames.filter((f) => {
      if (f.binary) return true;
      try {
        const v = JSON.parse(f.text) as { type?: unknown };
        return !(typeof v === 'object' && v !== null && (v.type === 'pong' || v.type === 'subscribed' || v.type === 'unsubscribed' || v.type === 'error'));
      } catch {
        return true;
      }
    });
  }

  describe(): string {
    return JSON.stringify(this.frames.map((f) => (f.binary ? `<binary ${f.data.toString('hex')}>` : f.text)));
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }
}

export interface ConnectOptions {
  headers?: Record<string, string>;
  origin?: string;
}

/** The HTTP answer to a refused upgrade. */
export interface Refusal {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

type Outcome = { ok: true; client: NativeClient } | { ok: false; refusal: Refusal };

function open(server: Switchboard, path: string, opts: ConnectOptions): Promise<Outcome> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers: opts.headers, ...(opts.origin ? { origin: opts.origin } : {}) });
  const client = new NativeClient(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ok: true, client }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ ok: false, refusal: { status: res.statusCode ?? 0, body } });
        ws.terminate();
      });
    });
    ws.once('error', (err) => reject(err));
  });
}

/** Opens a native connection; rejects when the server refuses the upgrade. */
export async function connectNative(server: Switchboard, path = '/ws', opts: ConnectOptions = {}): Promise<NativeClient> {
  const outcome = await open(server, path, opts);
  if (!outcome.ok) throw new Error(`upgrade refused: ${outcome.refusal.status} ${JSON.stringify(outcome.refusal.body)}`);
  return outcome.client;
}

/** Tries an upgrade that must be refused; resolves with the status and JSON body. */
export async function refusal(server: Switchboard, path: string, opts: ConnectOptions = {}): Promise<Refusal> {
  const outcome = await open(server, path, opts);
  if (outcome.ok) {
    outcome.client.close();
    throw new Error(`upgrade to ${path} was accepted`);
  }
  return outcome.refusal;
}

/** Subscribes (raw clients must have ?ack=1 or envelope) and waits for the ack. */
export async function subscribeNative(client: NativeClient, channel: string, password?: string): Promise<void> {
  const seen = client.json.length;
  client.send(password === undefined ? { action: 'subscribe', channel } : { action: 'subscribe', channel, password });
  const answer = await client.until(() =>
    client.json.slice(seen).find((m) => (m.type === 'subscribed' || m.type === 'error') && m.channel === channel),
  );
  if (answer.type !== 'subscribed') throw new Error(`subscribe to ${channel} failed: ${JSON.stringify(answer)}`);
}

export interface ApiReply {
  readonly status: number;
  readonly json: Record<string, unknown>;
}

export interface ApiCall {
  token?: string;
  /** Put the token in ?token= instead of Authorization: Bearer. */
  tokenInQuery?: boolean;
  query?: Record<string, string>;
  form?: Record<string, string>;
  json?: unknown;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

/** One call of the native HTTP API over loopback. */
export async function api(server: Switchboard, method: 'GET' | 'POST', path: string, call: ApiCall = {}): Promise<ApiReply> {
  const url = new URL(path, server.url);
  for (const [k, v] of Object.entries(call.query ?? {})) url.searchParams.set(k, v);
  const headers: Record<string, string> = { ...call.headers };
  if (call.token !== undefined) {
    if (call.tokenInQuery) url.searchParams.set('token', call.token);
    else headers.authorization = `Bearer ${call.token}`;
  }
  let body: string | Buffer | undefined = call.body;
  if (call.form) {
    body = new URLSearchParams(call.form).toString();
    headers['content-type'] = 'application/x-www-form-urlencoded';
  } else if (call.json !== undefined) {
    body = JSON.stringify(call.json);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json };
}

/** A HS256 JWT signed with `secret`. `iat`/`exp` are epoch seconds; omitted ones are left out. */
export function makeJwt(secret: string, claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function answerJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Closes clients and waits until each is closed, so a server shut down next has nothing in flight. */
export async function closeAll(clients: readonly NativeClient[]): Promise<void> {
  await Promise.all(
    clients.map((c) => {
      c.close();
      return c.closed;
    }),
  );
}

/** The JSON objects among text frames (raw payloads that are not JSON are skipped). */
export function jsonObjects(texts: readonly string[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const t of texts) {
    try {
      const v: unknown = JSON.parse(t);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(v as Record<string, unknown>);
    } catch {
      // a raw payload that is not JSON
    }
  }
  return out;
}
