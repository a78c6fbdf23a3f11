import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { frameText } from '../frame.js';
import type { ClientLink, LinkHandler, QueuePolicy } from '../seam.js';
import { WireStatsTable, closeCodeLabel, type WireStats } from '../wire-stats.js';
import { flushSoon, type Flushable } from './write-batcher.js';

/** After a slow-consumer close frame, how long the client gets before the socket is cut. */
const CLOSE_GRACE_MS = 2_000;

/** One client socket as the front-ends see it: bounded queue, one write per turn. Exported for its unit test. */
export class WsLink implements ClientLink, Flushable {
  handler!: LinkHandler;
  /**
   * Frames not yet handed to the socket: this turn's, or all while the socket needs to drain.
   * Undefined when there are none, so an idle link holds no array (and a flush makes none).
   */
  private queued: Buffer[] | undefined;
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
      if (this.awaitingDrain || this.socket.writableNeedDrain || this.queued === undefined) return this.overflow();
      this.writeQueued(); // reads the socket's backlog afresh
      if (!this.fits(frame.length)) return this.overflow();
    }
    if (this.queued === undefined) this.queued = [frame];
    else this.queued.push(frame);
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
    return this.socketBacklog + this.queuedBytes + length <= maxBytes && (this.queued?.length ?? 0) < maxMessages;
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
      this.queued = undefined;
      this.queuedBytes = 0;
      return;
    }
    if (this.queued === undefined || this.socket.destroyed) return;
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
    const frames = this.queued;
    if (frames === undefined || this.socket.destroyed) return;
    const bytes = this.queuedBytes;
    this.queued = undefined;
    this.queuedBytes = 0;
    // Copying a turn's small frames into one buffer costs less than a write request per frame.
    this.socket.write(frames.length === 1 ? frames[0] : joinFrames(frames, bytes));
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
