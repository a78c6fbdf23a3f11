/** An engine did not answer at start-up within its deadline (the CLI exits 2 on it). */
export class EngineStartError extends Error {
  override readonly name = 'EngineStartError';
}

/**
 * Whether the engine still answers. A connection can stay open while the engine behind it has
 * stopped (SIGSTOP, swapping, a full disk): the client reports nothing. Every message a node
 * publishes comes back to it (the engines echo to the publisher's own subscription), and a node
 * publishes a heartbeat every tick, so no echo for `timeoutMs` means the round trip is broken.
 */
export class EngineProbe {
  private lastEcho: number;
  private frozenSince: number | undefined;

  constructor(
    private readonly timeoutMs: number,
    now: number,
  ) {
    this.lastEcho = now;
  }

  /** One of this node's own messages came back. Returns true when that ends a freeze. */
  echoed(now: number): boolean {
    this.lastEcho = now;
    if (this.frozenSince === undefined) return false;
    this.frozenSince = undefined;
    return true;
  }

  /** Starts a fresh grace period (the connection was just made again). */
  reset(now: number): void {
    this.lastEcho = now;
    this.frozenSince = undefined;
  }

  get frozen(): boolean {
    return this.frozenSince !== undefined;
  }

  /** Checks the round trip; returns true when this check starts a freeze. */
  check(now: number): boolean {
    if (this.frozenSince !== undefined || now - this.lastEcho <= this.timeoutMs) return false;
    this.frozenSince = now;
    return true;
  }
}
