import type { Position } from './history.js';

/** How long a message waits for an earlier offset that another node published, and how many may wait. */
export const HOLD_MS = 250;
export const MAX_HELD = 256;

/**
 * Puts one channel's positioned messages back in offset order on a receiving node. Nodes append
 * (getting offsets) and then publish, so two nodes' messages can cross on the way; a message
 * whose predecessor has not arrived waits a moment (bounded in time and count), so live order
 * matches offset order and a client resuming from its last offset skips nothing it never saw.
 * A predecessor that never comes (its publisher died) is given up on after HOLD_MS.
 */
export class Sequencer<M> {
  private epoch: string | undefined;
  private last = 0;
  private readonly held = new Map<number, M>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deliver: (message: M) => void) {}

  accept(message: M, position: Position): void {
    if (position.epoch !== this.epoch) {
      this.flush();
      this.epoch = position.epoch;
      this.last = position.offset - 1;
    }
    if (position.offset <= this.last) {
      this.deliver(message); // late, after its successors were given up waiting: still delivered
      return;
    }
    if (position.offset > this.last + 1) {
      this.held.set(position.offset, message);
      if (this.held.size > MAX_HELD) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), HOLD_MS).unref();
      return;
    }
    this.deliver(message);
    this.last = position.offset;
    for (let next = this.held.get(this.last + 1); next !== undefined; next = this.held.get(this.last + 1)) {
      this.held.delete(this.last + 1);
      this.last += 1;
      this.deliver(next);
    }
    if (this.held.size === 0) this.stopTimer();
  }

  /** Delivers whatever waits, in offset order, and stops waiting for the gaps. */
  flush(): void {
    this.stopTimer();
    if (this.held.size === 0) return;
    const offsets = [...this.held.keys()].sort((a, b) => a - b);
    for (const offset of offsets) {
      const message = this.held.get(offset)!;
      this.held.delete(offset);
      this.last = offset;
      this.deliver(message);
    }
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
