import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { jsonObjects } from './native.js';

/**
 * WebSocket frames built and read by hand over node:net (RFC 6455 §5), for tests that must send
 * what no well-behaved client library would: bad opcodes, RSV bits, unmasked frames, lying
 * lengths, invalid UTF-8, stray continuations; and for clients that stop reading.
 */

export const Opcode = { Continuation: 0x0, Text: 0x1, Binary: 0x2, Close: 0x8, Ping: 0x9, Pong: 0xa } as const;

export interface FrameOptions {
  opcode: number;
  payload?: Buffer | string;
  /** Default true. */
  fin?: boolean;
  /** The three RSV bits as a number 0-7 (RSV1 = 4); default 0. */
  rsv?: number;
  /** Client frames must be masked; default true. */
  mask?: boolean;
  maskKey?: Buffer;
  /** Length written in the header instead of the payload's (the payload bytes given still follow). */
  announceLength?: number | bigint;
}

/** One frame: FIN/RSV/opcode byte, MASK bit and 7/16/64-bit length, masking key, (masked) payload. */
export function buildFrame(o: FrameOptions): Buffer {
  const payload = typeof o.payload === 'string' ? Buffer.from(o.payload, 'utf8') : (o.payload ?? Buffer.alloc(0));
  const mask = o.mask ?? true;
  const length = BigInt(o.announceLength ?? payload.length);
  const head: number[] = [((o.fin ?? true) ? 0x80 : 0) | (((o.rsv ?? 0) & 7) << 4) | (o.opcode & 0x0f)];
  let ext: Buffer;
  if (length < 126n) {
    head.push((mask ? 0x80 : 0) | Number(length));
    ext = Buffer.alloc(0);
  } else if (length < 65536n) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(Number(length));
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(length);
  }
  const parts = [Buffer.from(head), ext];
  if (mask) {
    const key = o.maskKey ?? randomBytes(4);
    const masked = Buffer.allocUnsafe(payload.length);
    for (let i = 0; i < payload.length; i++) masked[i] = (payload[i]) ^ (key[i & 3]);
    parts.push(key, masked);
  } else parts.push(payload);
  return Buffer.concat(parts);
}

export const textFrame = (text: string | Buffer, o: Partial<FrameOptions> = {}): Buffer => buildFrame({ opcode: Opcode.Text, payload: text, ...o });

/** A close frame's payload: 2-byte code then the reason. */
export function closePayload(code: number, reason = ''): Buffer {
  const out = Buffer.alloc(2 + Buffer.byteLength(reason));
  out.writeUInt16BE(code);
  out.write(reason, 2, 'utf8');
  return out;
}

export type UpgradeOutcome =
  | { readonly ok: true; readonly socket: RawSocket }
  | { readonly ok: false; readonly status: number; readonly head: string; readonly body: string };

/** A frame as the server sent it. */
export interface ServerFrame {
  readonly fin: boolean;
  readonly rsv: number;
  readonly opcode: number;
  readonly masked: boolean;
  readonly payload: Buffer;
  /** Close frames: the status code (undefined when the payload is empty). */
  readonly closeCode?: number;
  readonly closeReason?: string;
}

export interface RawSocketOptions {
  /** Extra request headers for the upgrade. */
  headers?: Record<string, string>;
  /** Answer the server's close frame with one of our own and end the socket (default true). */
  replyToClose?: boolean;
  /** Whether to keep a received data frame's bytes (default: keep all); counted either way. */
  keep?: (opcode: number, length: number) => boolean;
}

/**
 * A WebSocket client over a bare TCP socket: does the upgrade by hand, writes whatever bytes it
 * is given and parses the server's frames. `pause()` stops reading from the kernel, so the
 * server sees a client that no longer drains its socket.
 */
export class RawSocket {
  readonly frames: ServerFrame[] = [];
  /** Data frames received (text and binary), kept or not. */
  dataFrames = 0;
  bytesRead = 0;
  /** Resolves when the TCP connection has closed (either side). */
  readonly ended: Promise<void>;
  isEnded = false;
  /** Epoch ms when the TCP connection closed. */
  endedAt = 0;
  /** Epoch ms when the server's close frame arrived. */
  closeFrameAt = 0;
  private buffered: Buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(
    readonly socket: Socket,
    private readonly options: RawSocketOptions,
    leftover: Buffer,
  ) {
    this.ended = new Promise((resolve) => {
      socket.once('close', () => {
        this.isEnded = true;
        this.endedAt = Date.now();
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    if (leftover.length) this.onData(leftover);
  }

  /** Upgrades `path` on 127.0.0.1:`port`; rejects with the status line when the server refuses. */
  static async open(port: number, path: string, options: RawSocketOptions = {}): Promise<RawSocket> {
    const outcome = await RawSocket.attempt(port, path, options);
    if (!outcome.ok) throw new Error(`upgrade refused: ${outcome.head.split('\r\n')[0]} ${outcome.body}`);
    return outcome.socket;
  }

  /** Tries an upgrade: the open socket, or the server's HTTP answer (read to the end of the connection). */
  static async attempt(port: number, path: string, options: RawSocketOptions = {}): Promise<UpgradeOutcome> {
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    const socket = connect({ host: '127.0.0.1', port });
    const extra = Object.entries(options.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
    );
    const { head, rest } = await readHead(socket);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    if (status !== 101) {
      const chunks = [rest];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => undefined);
      if (!socket.destroyed) await once(socket, 'close');
      return { ok: false, status, head, body: Buffer.concat(chunks).toString('utf8') };
    }
    if (!head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
      socket.destroy();
      throw new Error('bad Sec-WebSocket-Accept');
    }
    return { ok: true, socket: new RawSocket(socket, options, rest) };
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  private onData(chunk: Buffer): void {
    this.bytesRead += chunk.length;
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
    for (;;) {
      const parsed = parseFrame(this.buffered);
      if (!parsed) break;
      this.buffered = this.buffered.subarray(parsed.size);
      const f = parsed.frame;
      if (f.opcode === Opcode.Text || f.opcode === Opcode.Binary || f.opcode === Opcode.Continuation) {
        this.dataFrames += 1;
        if (this.options.keep && !this.options.keep(f.opcode, f.payload.length)) {
          this.frames.push({ ...f, payload: Buffer.alloc(0) });
          continue;
        }
      }
      // A copy, so the frame does not pin the whole receive buffer.
      this.frames.push({ ...f, payload: Buffer.from(f.payload) });
      if (f.opcode === Opcode.Close) {
        this.closeFrameAt = Date.now();
        if (this.options.replyToClose ?? true) {
          if (!this.socket.destroyed) this.socket.end(buildFrame({ opcode: Opcode.Close, payload: f.payload.subarray(0, 2) }));
        }
      }
    }
    this.wake();
  }

  /** Writes raw bytes (one or more frames, or a part of one). */
  write(bytes: Buffer | string): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** A masked text frame. */
  send(message: unknown): void {
    this.write(textFrame(typeof message === 'string' ? message : JSON.stringify(message)));
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  destroy(): void {
    this.socket.destroy();
  }

  get closeFrame(): ServerFrame | undefined {
    return this.frames.find((f) => f.opcode === Opcode.Close);
  }

  /** Text frames as strings, in order. */
  get texts(): string[] {
    return this.frames.filter((f) => f.opcode === Opcode.Text).map((f) => f.payload.toString('utf8'));
  }

  /** Text frames that parse as JSON objects. */
  get json(): Array<Record<string, unknown>> {
    return jsonObjects(this.texts);
  }

  /** Waits until `pred` returns something (checked on every frame and at the end of the connection). */
  async until<T>(pred: () => T | undefined | false, what: string, timeoutMs = 3000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = pred();
      if (found !== undefined && found !== false) return found;
      if (this.isEnded) throw new Error(`connection ended while waiting for ${what}; frames: ${this.describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The first JSON frame matching `pred`. */
  message(pred: (m: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>> {
    return this.until(() => this.json.find(pred), 'a matching message', timeoutMs);
  }

  /** Resolves with the server's close frame and the end of the TCP connection. */
  async closed(timeoutMs = 3000): Promise<ServerFrame> {
    const timer = new Promise<never>((_, reject) => {
      const t = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms; frames: ${this.describe()}`)), timeoutMs);
      void this.ended.then(() => clearTimeout(t));
    });
    await Promise.race([this.ended, timer]);
    const frame = this.closeFrame;
    if (!frame) throw new Error(`connection ended without a close frame; frames: ${this.describe()}`);
    return frame;
  }

  describe(): string {
    return JSON.stringify(
      this.frames.slice(-20).map((f) =>
        f.opcode === Opcode.Close ? `<close ${f.closeCode} ${f.closeReason}>` : f.opcode === Opcode.Text ? f.payload.toString('utf8').slice(0, 300) : `<op ${f.opcode} ${f.payload.length}B>`,
      ),
    );
  }
}

/** Parses one complete server frame at the start of `buf`, or undefined if it is not all there. */
export function parseFrame(buf: Buffer): { frame: ServerFrame; size: number } | undefined {
  if (buf.length < 2) return undefined;
  const b0 = buf[0];
  const b1 = buf[1];
  let offset = 2;
  let length = b1 & 0x7f;
  if (length === 126) {
    if (buf.length < 4) return undefined;
    length = buf.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buf.length < 10) return undefined;
    length = Number(buf.readBigUInt64BE(2));
    offset = 10;
  }
  const masked = (b1 & 0x80) !== 0;
  let key: Buffer | undefined;
  if (masked) {
    if (buf.length < offset + 4) return undefined;
    key = buf.subarray(offset, offset + 4);
    offset += 4;
  }
  if (buf.length < offset + length) return undefined;
  let payload = buf.subarray(offset, offset + length);
  if (key) {
    const k = key;
    payload = Buffer.from(payload.map((byte, i) => byte ^ (k[i & 3])));
  }
  const opcode = b0 & 0x0f;
  const frame: ServerFrame = {
    fin: (b0 & 0x80) !== 0,
    rsv: (b0 >> 4) & 7,
    opcode,
    masked,
    payload,
    ...(opcode === Opcode.Close && payload.length >= 2 ? { closeCode: payload.readUInt16BE(0), closeReason: payload.subarray(2).toString('utf8') } : {}),
  };
  return { frame, size: offset + length };
}

/** Reads up to the end of an HTTP response head; what follows is returned as `rest`. */
function readHead(socket: Socket): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.off('close', onClose);
      resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
    };
    const onClose = (): void => reject(new Error(`closed before a response head; got ${JSON.stringify(buf.toString('latin1'))}`));
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', onClose);
  });
}

/** What a raw HTTP exchange produced: the response (if any) and how the connection ended. */
export interface RawHttpResult {
  readonly status: number | undefined;
  readonly head: string;
  readonly body: string;
  /** Epoch ms when the server closed (or reset) the connection. */
  readonly endedAt: number;
}

/**
 * Opens a TCP connection, writes `parts` (with `gapMs` between them) and collects everything
 * the server sends until it closes the connection (or `timeoutMs` passes, which rejects).
 */
export function rawHttp(port: number, parts: Array<string | Buffer>, opts: { gapMs?: number; timeoutMs?: number } = {}): Promise<RawHttpResult> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`server kept the connection open for ${opts.timeoutMs ?? 5000} ms; got ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 300))}`));
    }, opts.timeoutMs ?? 5000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the response is an ending too
    socket.once('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), head, body: split < 0 ? '' : text.slice(split + 4), endedAt: Date.now() });
    });
    void (async () => {
      for (const [i, part] of parts.entries()) {
        if (i > 0 && opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        if (socket.destroyed) return;
        socket.write(part);
      }
    })();
  });
}
