/**
 * What this node exchanged with its cluster engine (monotonic, read when metrics are scraped).
 * The round trip of a cluster request (asking every other node and hearing them all) goes to
 * `observeRoundTrip` as it completes; requests that time out are counted instead.
 */
export class ClusterStats {
  /** Messages this node published to the engine (channel messages and control traffic). */
  sent = 0;
  /** Messages from other nodes that the engine brought (this node's own echoes not counted). */
  received = 0;
  /**
   * Channel messages the engine brought to this node, its own echoes included: what routing
   * decides (every message on every node with `broadcast`, only wanted shards with `interest`).
   */
  channelMessagesIn = 0;
  requests = 0;
  requestTimeouts = 0;

  constructor(readonly observeRoundTrip: (seconds: number) => void = () => undefined) {}
}
