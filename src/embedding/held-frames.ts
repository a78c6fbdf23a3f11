import type { ClientLink, LinkHandler, QueuePolicy } from '../transport/seam.js';

/**
 * What the hub sends a connection while its connectionOpened hook has not answered. The
 * connection is in the hub from the start (so the hook, and the embedding API, can find it and
 * send to it), but nothing may reach the client before the hook's answer: a Pusher client must
 * read pusher:connection_established first, and a refused client must get nothing.
 *
 * The frames are held as the send queue would hold them, within the app's send-queue bounds
 * (`maxQueueMessages`, `maxQueueBytes`); past them the app's slow-consumer policy decides, as it
 * would for a full queue: `close` closes the connection, `drop` and `wait` drop the frame (there
 * is nothing for a client to drain while the hook runs). The hook's timeout bounds the time.
 */
export class HeldFrames {
  private frames: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly policy: QueuePolicy) {}

  /** Holds `frame`; past the bounds tells `handler` as its link would (overflow or a dropped frame) and answers false. */
  hold(frame: Buffer, handler: Pick<LinkHandler, 'onOverflow' | 'onDropped'>): boolean {
    if (this.frames.length >= this.policy.maxMessages || this.bytes + frame.length > this.policy.maxBytes) {
      if (this.policy.onFull === 'close') handler.onOverflow();
      else handler.onDropped();
      return false;
    }
    this.frames.push(frame);
    this.bytes += frame.length;
    return true;
  }

  /** Writes what is held to `link`, oldest first. */
  releaseTo(link: ClientLink): void {
    const frames = this.frames;
    this.frames = [];
    this.bytes = 0;
    for (const frame of frames) link.write(frame);
  }
}
