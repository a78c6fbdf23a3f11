import type { NatsConnection } from '@nats-io/transport-node';
import { MAX_PENDING_COMMANDS, StoreBackloggedError } from './bounded-redis.js';

/** A NATS connection that also says how many store requests wait for an answer. */
export interface BoundedNats extends NatsConnection {
  readonly pendingRequests: number;
}

/**
 * The NATS connection as the stores (claims, history, idempotency, the webhook queue) use it,
 * bounded while NATS is away. nats.js appends every request to an unbounded outbound buffer
 * while disconnected and, while the server is frozen, keeps every request sent until it times
 * out. Here a request fails at once while the connection is down, and beyond `maxPending`
 * unanswered requests a new one is refused at once. JetStream and KV calls all go through
 * `request`, so guarding it bounds them; the client reconnects by itself and nothing needs a
 * restart. Everything else is the connection itself.
 */
export function boundedNats(nc: NatsConnection, maxPending = MAX_PENDING_COMMANDS): BoundedNats {
  let up = true;
  let pending = 0;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') up = false;
      else if (s.type === 'reconnect') up = true;
    }
  })().catch(() => (up = false));

  const request: NatsConnection['request'] = async (...args) => {
    if (!up || nc.isClosed()) throw new StoreBackloggedError('NATS is not connected: the store request is refused');
    if (pending >= maxPending) throw new StoreBackloggedError(`NATS is not answering: ${pending} requests wait already`);
    pending++;
    try {
      return await nc.request(...args);
    } finally {
      pending--;
    }
  };
  // The cast: the proxy adds `pendingRequests`, which the get trap answers.
  return new Proxy(nc as BoundedNats, {
    get(target, key) {
      if (key === 'request') return request;
      if (key === 'pendingRequests') return pending;
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
