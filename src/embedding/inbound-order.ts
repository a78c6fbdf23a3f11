/**
 * Keeps one connection's frames in arrival order while a hook answers asynchronously. While
 * nothing is pending, a task runs at once, synchronously (the path with no hooks, or with hooks
 * that answer at once, costs no promise). A task that returns a promise holds the frames that
 * come after it, up to `maxWaiting`; past that, `run` refuses and the caller tells the client.
 */
export class InboundOrder {
  private readonly waiting: (() => void | Promise<void>)[] = [];
  private busy = false;
  private stopped = false;

  constructor(
    private readonly maxWaiting: number,
    /** A task that rejects: a bug in the caller, reported rather than lost. */
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Runs `task` now or after those before it; false (task dropped) when `maxWaiting` tasks already wait. */
  run(task: () => void | Promise<void>): boolean {
    if (this.stopped) return true;
    if (this.busy) {
      if (this.waiting.length >= this.maxWaiting) return false;
      this.waiting.push(task);
      return true;
    }
    this.execute(task);
    return true;
  }

  /** The connection closed: what still waits is dropped. */
  stop(): void {
    this.stopped = true;
    this.waiting.length = 0;
  }

  private execute(task: () => void | Promise<void>): void {
    const pending = task();
    if (!pending) return;
    this.busy = true;
    pending
      .catch(this.onError)
      .finally(() => this.next())
      .catch(this.onError);
  }

  private next(): void {
    this.busy = false;
    while (!this.busy && !this.stopped) {
      const task = this.waiting.shift();
      if (!task) return;
      try {
        this.execute(task);
      } catch (err) {
        // A synchronous throw out of a queued task has no socket handler above it to catch it.
        this.onError(err);
      }
    }
  }
}
