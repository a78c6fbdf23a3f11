import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { Logger } from '../log.js';
import type { ClusterEngine, EngineHandlers } from './engine.js';

/**
 * NATS core pub/sub. The client reconnects and resubscribes by itself; while it is away we do
 * not publish, because its buffer would deliver stale messages after the outage.
 */
export class NatsEngine implements ClusterEngine {
  readonly name = 'nats';
  private nc: NatsConnection | undefined;
  private up = false;
  private handlers: EngineHandlers | undefined;
  /** Topics added after start, so they can be dropped again. */
  private readonly added = new Map<string, Subscription>();

  constructor(
    private readonly servers: string[],
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  get connection(): NatsConnection | undefined {
    return this.nc;
  }

  async start(topics: readonly string[], handlers: EngineHandlers): Promise<void> {
    const nc = await connect({ servers: this.servers, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'switchboard' });
    this.nc = nc;
    this.handlers = handlers;
    for (const topic of topics) this.listen(nc, topic);
    await nc.flush();
    this.up = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect' && this.up) {
          this.up = false;
          handlers.status(false);
        } else if (s.type === 'reconnect' && !this.up) {
          this.up = true;
          handlers.status(true);
        }
      }
    })().catch((err: unknown) => this.log.warn({ err }, 'nats status watcher ended'));
  }

  private listen(nc: NatsConnection, topic: string): Subscription {
    return nc.subscribe(this.prefix + topic, {
      callback: (err, msg) => {
        if (err) this.log.warn({ err: err.message }, 'nats subscription error');
        else this.handlers?.message(topic, Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
      },
    });
  }

  async subscribe(topic: string): Promise<void> {
    const nc = this.nc;
    if (!nc || this.added.has(topic)) return;
    this.added.set(topic, this.listen(nc, topic));
    // The server has the subscription once it answered the PING that follows it.
    await nc.flush();
  }

  unsubscribe(topic: string): Promise<void> {
    this.added.get(topic)?.unsubscribe();
    this.added.delete(topic);
    return Promise.resolve();
  }

  publish(topic: string, bytes: Buffer): void {
    if (!this.up || !this.nc) return;
    try {
      this.nc.publish(this.prefix + topic, bytes);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'nats publish failed');
    }
  }

  async close(): Promise<void> {
    this.up = false;
    await this.nc?.drain().catch(() => this.nc?.close());
  }
}
