import { Kvm, type KV } from '@nats-io/kv';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { IdempotencyStore } from '../core/idempotency.js';
import { openOnce } from './open-once.js';

const NANOS_PER_MS = 1_000_000;
/** JetStream's "wrong last sequence": the key already has a value. */
const WRONG_LAST_SEQUENCE = 10071;

/**
 * Idempotency keys in a JetStream key-value bucket whose entries age out after the window:
 * `create` fails on a key that exists, so of two nodes claiming one key only one succeeds.
 */
export class NatsIdempotencyStore implements IdempotencyStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, bucket: string, windowMs: number): Promise<NatsIdempotencyStore> {
    const kv = await new Kvm(nc).create(bucket, { ttl: windowMs, history: 1 });
    // The bucket may exist from a run with another window: its age limit follows the config.
    const jsm = await jetstreamManager(nc);
    const stream = `KV_${bucket}`;
    const info = await jsm.streams.info(stream);
    if (info.config.max_age !== windowMs * NANOS_PER_MS) await jsm.streams.update(stream, { ...info.config, max_age: windowMs * NANOS_PER_MS });
    return new NatsIdempotencyStore(kv);
  }

  async claim(appId: string, key: string): Promise<boolean> {
    const name = `${Buffer.from(appId).toString('base64url')}.${Buffer.from(key).toString('base64url')}`;
    try {
      await this.kv.create(name, '');
      return true;
    } catch (err) {
      // The key exists (another publish took it): JetStream's "wrong last sequence".
      if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) return false;
      throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The JetStream store, opened on first use (see openOnce). */
export class LazyNatsIdempotencyStore implements IdempotencyStore {
  private readonly store: ReturnType<typeof openOnce<IdempotencyStore>>;

  constructor(open: () => Promise<IdempotencyStore>) {
    this.store = openOnce(open);
  }

  async claim(appId: string, key: string): Promise<boolean> {
    return (await this.store.get()).claim(appId, key);
  }

  async close(): Promise<void> {
    await (await this.store.opened()?.catch(() => undefined))?.close();
  }
}
