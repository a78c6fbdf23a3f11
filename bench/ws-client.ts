// Minimal WebSocket client on node:net. A full client library (ws, pusher-js)
// costs several times more CPU per message than the server under test spends,
// which would make the load generator the bottleneck. This one only finds
// frame boundaries and hands out views into the receive buffer.

import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { nowUs } from './protocol.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const CRLF2 = Buffer.from('\r\n\r\n');
const STATUS_101 = Buffer.from('HTTP/1.1 101');
const MAX_HANDSHAKE_BYTES = 16 * 1024;
const CLOSE_FRAME_PAYLOAD = Buffer.from([0x03, 0xe8]);

// All sockets of a process read into this one buffer (net `onread`): no
// allocation and no stream machinery per read. Safe because each read is
// fully parsed before the callback returns; partial frames are copied out.
const RECV_BUFFER = Buffer.allocUnsafe(256 * 1024);

/**
 * Sec-WebSocket-Key only has to be 16 random bytes; nothing requires a fresh one per
 * connection from the same client. A per-process pool of keys with their precomputed
 * accept values saves a randomBytes + SHA-1 + base64 per handshake (~8 % of the client's
 * CPU in a storm), and the accept check becomes one byte search.
 */
const KEY_POOL = Array.from({ length: 64 }, () => {
  const key = randomBytes(16).toString('base64');
  return { key, accept: Buffer.from(createHash('sha1').update(key + GUID).digest('base64'), 'latin1') };
});
let keyIndex = 0;

export interface WsTarget {
  host: string;
  port: number;
  path: string;
  localAddress?: string | undefined;
}

export interface WsHandlers<T> {
  onOpen(owner: T): void;
  /**
   * payload is buf[start, end); valid only during the call (no copy was made).
   * readAtUs: when the read that carried the frame's last bytes returned (nowUs()),
   * taken before any parsing, so it is the same for every frame of that read.
   */
  onText(owner: T, buf: Buffer, start: number, end: number, readAtUs: number): void;
  onClose(owner: T, error: Error | undefined): void;
}

/** `owner` is handed back to the shared handlers, so one handler object serves thousands of sockets. */
export class RawWsClient<T> {
  private socket: Socket | undefined;
  private pending: Buffer | undefined;
  private upgraded = false;
  private expectedAccept: Buffer | undefined;
  private closing = false;
  private closed = false;
  /** Reassembly buffer for fragmented messages; servers rarely fragment. */
  private fragments: Buffer[] | undefined;
  private fragmentOpcode = 0;

  constructor(
    private readonly target: WsTarget,
    private readonly handlers: WsHandlers<T>,
    private readonly owner: T,
  ) {}

  get isOpen(): boolean {
    return this.upgraded && !this.closed;
  }

  connect(): void {
    const k = KEY_POOL[keyIndex++ & (KEY_POOL.length - 1)];
    this.expectedAccept = k.accept;
    const socket = connect({
      host: this.target.host,
      port: this.target.port,
      localAddress: this.target.localAddress,
      noDelay: true,
      onread: {
        buffer: RECV_BUFFER,
        callback: (n: number): boolean => {
          // Stamp first: frames of this read arrived no later than now.
          this.onData(nowUs(), n);
          return true;
        },
      },
    });
    this.socket = socket;
    socket.on('connect', () => {
      socket.write(
        `GET ${this.target.path} HTTP/1.1\r\n` +
          `Host: ${this.target.host}:${this.target.port}\r\n` +
          'Upgrade: websocket\r\n' +
          'Connection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${k.key}\r\n` +
          'Sec-WebSocket-Version: 13\r\n\r\n',
        'latin1',
      );
    });
    socket.on('error', (err) => this.finish(err));
    socket.on('close', () => this.finish(this.upgraded ? undefined : new Error('closed before upgrade')));
  }

  sendText(text: string): void {
    if (!this.socket || this.closed || this.closing) return;
    this.socket.write(encodeFrame(0x1, Buffer.from(text)));
  }

  /** Sends an already encoded frame payload (e.g. a cached subscribe message). */
  sendTextBytes(payload: Buffer): void {
    if (!this.socket || this.closed || this.closing) return;
    this.socket.write(encodeFrame(0x1, payload));
  }

  close(): void {
    // Once only: the server's answering close frame lands here too, and writing to an
    // ended socket raises (and builds a stack trace for) ERR_STREAM_WRITE_AFTER_END.
    if (!this.socket || this.closed || this.closing) return;
    this.closing = true;
    const s = this.socket;
    if (this.upgraded) {
      // RFC 6455 §7.1.1: after the close frames the server closes the TCP connection first.
      // Waiting for it (not ending our side now) leaves TIME_WAIT on the server's listening
      // port instead of on one of our ephemeral ports: tearing down 10k+ connections would
      // otherwise fill the machine's ephemeral range for a minute, slowing every later
      // connect() and failing other programs' bind(0) with EADDRINUSE.
      s.write(encodeFrame(0x8, CLOSE_FRAME_PAYLOAD));
    } else {
      s.end();
    }
    // Do not wait for the server forever.
    setTimeout(() => s.destroy(), 2000).unref();
  }

  destroy(): void {
    this.socket?.destroy();
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    this.handlers.onClose(this.owner, error);
  }

  /** The read's bytes are RECV_BUFFER[0, n). */
  private onData(readAtUs: number, n: number): void {
    let buf: Buffer;
    let len: number;
    if (this.pending) {
      buf = Buffer.concat([this.pending, RECV_BUFFER.subarray(0, n)]);
      len = buf.length;
      this.pending = undefined;
    } else {
      buf = RECV_BUFFER;
      len = n;
    }
    let off = 0;
    if (!this.upgraded) {
      const end = buf.subarray(0, len).indexOf(CRLF2);
      if (end < 0) {
        if (len > MAX_HANDSHAKE_BYTES) return this.finish(new Error('handshake response too large'));
        this.pending = Buffer.from(buf.subarray(0, len)); // copy: buf may be the shared receive buffer
        return;
      }
      if (buf.compare(STATUS_101, 0, STATUS_101.length, 0, STATUS_101.length) !== 0 || (buf[12] !== 0x20 && buf[12] !== 0x0d)) {
        const head = buf.toString('latin1', 0, end);
        return this.finish(new Error(`upgrade refused: ${head.slice(0, head.indexOf('\r\n'))}`));
      }
      // The accept value is 28 base64 characters derived from our key: finding it in the
      // head is as strict as parsing the header, at the cost of one byte search.
      if (buf.subarray(0, end).indexOf(this.expectedAccept!) < 0) return this.finish(new Error('bad Sec-WebSocket-Accept'));
      this.upgraded = true;
      this.handlers.onOpen(this.owner);
      off = end + 4;
      if (off >= len || this.closed) return;
    }
    this.parseFrames(buf, off, len, readAtUs);
  }

  private parseFrames(buf: Buffer, off: number, len: number, readAtUs: number): void {
    while (off + 2 <= len && !this.closed) {
      const b0 = buf[off];
      const b1 = buf[off + 1];
      let payloadLen = b1 & 0x7f;
      let header = 2;
      if (payloadLen === 126) {
        if (off + 4 > len) break;
        payloadLen = buf.readUInt16BE(off + 2);
        header = 4;
      } else if (payloadLen === 127) {
        if (off + 10 > len) break;
        payloadLen = buf.readUInt32BE(off + 2) * 2 ** 32 + buf.readUInt32BE(off + 6);
        header = 10;
      }
      // Servers must not mask, but tolerate it by skipping the key.
      if (b1 & 0x80) header += 4;
      if (off + header + payloadLen > len) break;
      const start = off + header;
      const end = start + payloadLen;
      this.onFrame(b0 & 0x80, b0 & 0x0f, buf, start, end, readAtUs);
      off = end;
    }
    // Copy: buf usually is the shared receive buffer, which the next read overwrites.
    if (off < len && !this.closed) this.pending = Buffer.from(buf.subarray(off, len));
  }

  private onFrame(fin: number, opcode: number, buf: Buffer, start: number, end: number, readAtUs: number): void {
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (fin) {
          if (opcode === 0x1) this.handlers.onText(this.owner, buf, start, end, readAtUs);
        } else {
          this.fragmentOpcode = opcode;
          this.fragments = [Buffer.from(buf.subarray(start, end))];
        }
        return;
      case 0x0:
        if (!this.fragments) return;
        this.fragments.push(Buffer.from(buf.subarray(start, end)));
        if (fin) {
          const whole = Buffer.concat(this.fragments);
          this.fragments = undefined;
          if (this.fragmentOpcode === 0x1) this.handlers.onText(this.owner, whole, 0, whole.length, readAtUs);
        }
        return;
      case 0x8:
        this.close();
        return;
      case 0x9:
        if (!this.closing) this.socket?.write(encodeFrame(0xa, Buffer.from(buf.subarray(start, end))));
        return;
      default:
        return; // pong and reserved opcodes carry nothing we count
    }
  }
}

/** Client frames must be masked (RFC 6455 §5.3); the key just needs to vary. */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const extra = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + extra + 4 + n);
  frame[0] = 0x80 | opcode;
  let off = 2;
  if (extra === 0) {
    frame[1] = 0x80 | n;
  } else if (extra === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
    off = 4;
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
    off = 10;
  }
  const mask = nextMask();
  frame.writeUInt32BE(mask, off);
  const m0 = mask >>> 24;
  const m1 = (mask >>> 16) & 0xff;
  const m2 = (mask >>> 8) & 0xff;
  const m3 = mask & 0xff;
  const base = off + 4;
  for (let i = 0; i < n; i++) {
    const m = (i & 3) === 0 ? m0 : (i & 3) === 1 ? m1 : (i & 3) === 2 ? m2 : m3;
    frame[base + i] = payload[i] ^ m;
  }
  return frame;
}

// Masks come from a pre-filled random pool so sending does not pay for a
// crypto call per frame.
const maskPool = randomBytes(4096);
let maskOffset = 0;
function nextMask(): number {
  if (maskOffset + 4 > maskPool.length) {
    randomBytes(maskPool.length).copy(maskPool);
    maskOffset = 0;
  }
  const m = maskPool.readUInt32BE(maskOffset);
  maskOffset += 4;
  return m;
}
