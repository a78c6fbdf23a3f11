/**
 * A token bucket: `perSecond` tokens refill continuously up to a burst of `perSecond`.
 * One per connection for client events; cheap enough to sit on every message.
 */
export class TokenBucket {
  /** Thousandths of a token, so whole-millisecond clocks refill exactly (ten 0.1s are not 1 in floating point). */
  private milliTokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
  ) {
    this.milliTokens = perSecond * 1000;
    this.last = now();
  }

  take(): boolean {
    const now = this.now();
    this.milliTokens = Math.min(this.perSecond * 1000, this.milliTokens + (now - this.last) * this.perSecond);
    this.last = now;
    if (this.milliTokens < 1000) return false;
    this.milliTokens -= 1000;
    return true;
  }
}
