/**
 * The only thing a scaling engine implements: named topics (fixed ones at start, more added and
 * dropped as a node's interest changes), and fire-and-forget publishing. Everything else (the message union, heartbeats, snapshots,
 * gathering answers) is written once in bus.ts.
 */
export interface EngineHandlers {
  message(topic: string, bytes: Buffer): void;
  /** The engine became unreachable (false) or reachable again with subscriptions restored (true). */
  status(up: boolean): void;
}

export interface ClusterEngine {
  readonly name: string;
  /** Connects and subscribes to `topics`; resolves when messages can flow both ways. */
  start(topics: readonly string[], handlers: EngineHandlers): Promise<void>;
  /**
   * Adds a topic after start (interest routing). Resolves once the engine confirmed it: a
   * message published after that reaches this node. After an outage the engine restores it
   * with the others.
   */
  subscribe(topic: string): Promise<void>;
  /** Drops a topic added with subscribe(). */
  unsubscribe(topic: string): Promise<void>;
  /** Never throws and never queues while the engine is down: delivery is at most once. */
  publish(topic: string, bytes: Buffer): void;
  close(): Promise<void>;
}
