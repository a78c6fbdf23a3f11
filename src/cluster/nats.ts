import { connect, type NatsConnection } from '@nats-io/transport-node';
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
    for (const topic of topics) {
      nc.subscribe(this.prefix + topic, {
        callback: (err, msg) => {
          if (err) this.log.warn({ err: err.message }, 'nats subscription error');
          else handlers.message(topic, Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength));
        },
      });
    }
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
