/**
 * Says something at most once per period per key, with how many times it happened since it
 * was last said: a queue that stays full, or an engine that stays away, must not flood the log.
 */
export class OncePerPeriod {
  private readonly seen = new Map<string, { count: number; lastAt: number }>();

  constructor(
    private readonly periodMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, say: (count: number) => void): void {
    const now = this.now();
    const entry = this.seen.get(key);
    if (!entry) {
      this.seen.set(key, { count: 0, lastAt: now });
      say(1);
      return;
    }
    entry.count += 1;
    if (now - entry.lastAt < this.periodMs) return;
    say(entry.count);
    entry.count = 0;
    entry.lastAt = now;
  }
}
