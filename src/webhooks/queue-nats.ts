import { createHash } from 'node:crypto';
import { AckPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type Consumer, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { boundedNats } from '../cluster/bounded-nats.js';
import { decodeDeadLetter, decodeEntry, encodeDeadLetter, encodeEntry, type DeadLetter, type LaneRef, type Lease, type PushResult, type QueueEntry, type QueueLimits, type WebhookQueue } from './queue.js';

/** JetStream's shortest pull wait. */
const MIN_PULL_MS = 1_000;

/** Stream and subject names take no dots or wildcards: an app id is hashed into them. */
function appToken(appId: string): string {
  return createHash('sha256').update(appId).digest('hex').slice(0, 20);
}

/**
 * The queue in NATS JetStream. Per app, a work-queue stream (file storage, `discard: new` at the
 * app's bound) with a subject per lane and a durable pull consumer per lane; a lane's consumer
 * lets one message be unacknowledged at a time (a batch's worth on batching targets), so the
 * lane goes out in order and a node that dies leaves its message to be redelivered after
 * `leaseMs` (the ack wait). Dead letters go to a second, capped stream per app.
 */
export class NatsWebhookQueue implements WebhookQueue {
  readonly name = 'nats';
  private readonly streams = new Map<string, Promise<void>>();
  private readonly consumers = new Map<string, Promise<Consumer>>();
  private up = true;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly prefix: string,
    private readonly limits: QueueLimits,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.up = false;
        else if (s.type === 'reconnect') this.up = true;
      }
    })().catch(() => (this.up = false));
  }

  get isHealthy(): boolean {
    return this.up && !this.nc.isClosed();
  }

  static async open(servers: string[], prefix: string, limits: QueueLimits, timeoutMs: number): Promise<NatsWebhookQueue> {
    // Bounded while NATS is down or frozen, as the other stores are (see cluster/bounded-nats.ts).
    const nc = boundedNats(await connect({ servers, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: timeoutMs, name: 'switchboard-webhooks' }));
    try {
      const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
      return new NatsWebhookQueue(nc, jetstream(nc, { timeout: timeoutMs }), jsm, prefix, limits);
    } catch (err) {
      await nc.close();
      throw err;
    }
  }

  private names(appId: string): { stream: string; dead: string; subject: string; deadSubject: string } {
    const t = appToken(appId);
    return { stream: `${this.prefix}_wh_${t}`, dead: `${this.prefix}_whdead_${t}`, subject: `${this.prefix}.wh.${t}`, deadSubject: `${this.prefix}.whdead.${t}` };
  }

  private laneSubject(ref: LaneRef): string {
    return `${this.names(ref.appId).subject}.${ref.target}.${ref.lane}`;
  }

  /** Creates (or brings to the configured limits) the app's two streams, once per process. */
  private ensureStreams(appId: string): Promise<void> {
    let ready = this.streams.get(appId);
    if (!ready) {
      const n = this.names(appId);
      ready = (async () => {
        await this.upsertStream({
          name: n.stream,
          subjects: [`${n.subject}.>`],
          retention: RetentionPolicy.Workqueue,
          storage: StorageType.File,
          discard: DiscardPolicy.New,
          max_msgs: this.limits.maxEntries,
          max_bytes: this.limits.maxBytes,
        });
        await this.upsertStream({
          name: n.dead,
          subjects: [n.deadSubject],
          retention: RetentionPolicy.Limits,
          storage: StorageType.File,
          discard: DiscardPolicy.Old,
          max_msgs: this.limits.maxDeadLetters,
        });
      })().catch((err: unknown) => {
        this.streams.delete(appId); // tried again on the next use
        throw err;
      });
      this.streams.set(appId, ready);
    }
    return ready;
  }

  private async upsertStream(config: Parameters<JetStreamManager['streams']['add']>[0] & { name: string }): Promise<void> {
    try {
      await this.jsm.streams.info(config.name);
    } catch {
      await this.jsm.streams.add(config);
      return;
    }
    await this.jsm.streams.update(config.name, config);
  }

  private consumer(ref: LaneRef, max: number): Promise<Consumer> {
    const subject = this.laneSubject(ref);
    let consumer = this.consumers.get(subject);
    if (!consumer) {
      const stream = this.names(ref.appId).stream;
      const name = `${ref.target}_${ref.lane}`;
      consumer = (async () => {
        await this.ensureStreams(ref.appId);
        await this.jsm.consumers.add(stream, {
          durable_name: name,
          filter_subject: subject,
          ack_policy: AckPolicy.Explicit,
          ack_wait: this.limits.leaseMs * 1_000_000,
          max_ack_pending: max,
          max_deliver: -1,
        });
        return this.js.consumers.get(stream, name);
      })().catch((err: unknown) => {
        this.consumers.delete(subject);
        throw err;
      });
      this.consumers.set(subject, consumer);
    }
    return consumer;
  }

  async push(ref: LaneRef, entry: QueueEntry): Promise<PushResult> {
    await this.ensureStreams(ref.appId);
    try {
      await this.js.publish(this.laneSubject(ref), encodeEntry(entry));
      return 'queued';
    } catch (err) {
      // discard: new refuses a message past max_msgs / max_bytes with one of these.
      if (/maximum (messages|bytes)|resource limits exceeded/i.test((err as Error).message)) return 'full';
      throw err;
    }
  }

  async take(ref: LaneRef, max: number, waitMs: number): Promise<Lease | undefined> {
    const consumer = await this.consumer(ref, max);
    const expires = Math.max(MIN_PULL_MS, waitMs);
    const msgs: JsMsg[] = [];
    if (max === 1) {
      const msg = await consumer.next({ expires });
      if (msg) msgs.push(msg);
    } else {
      for await (const msg of await consumer.fetch({ max_messages: max, expires })) msgs.push(msg);
    }
    if (msgs.length === 0) return undefined;
    const entries = msgs.map((m) => decodeEntry(m.string()));
    const ackAll = async (): Promise<void> => {
      await Promise.all(msgs.map((m) => m.ackAck()));
    };
    return {
      entries,
      extend: () => {
        for (const m of msgs) m.working();
        return Promise.resolve(true);
      },
      ack: ackAll,
      release: () => {
        for (const m of msgs) m.nak();
        return Promise.resolve();
      },
      bury: async (failedAt, reason) => {
        const deadSubject = this.names(ref.appId).deadSubject;
        for (const e of entries) await this.js.publish(deadSubject, encodeDeadLetter({ ...e, target: ref.target, lane: ref.lane, failedAt, reason }));
        await ackAll();
      },
    };
  }

  /** The dead letters with their stream sequence, oldest first. */
  private async deadWithSeq(appId: string, limit: number): Promise<Array<{ seq: number; dead: DeadLetter }>> {
    await this.ensureStreams(appId);
    const stream = this.names(appId).dead;
    const { state } = await this.jsm.streams.info(stream);
    const out: Array<{ seq: number; dead: DeadLetter }> = [];
    for (let seq = state.first_seq; seq <= state.last_seq && out.length < limit && state.messages > 0; seq++) {
      const stored = await this.jsm.streams.getMessage(stream, { seq }).catch(() => null); // deleted (replayed) ones leave gaps
      if (stored) out.push({ seq, dead: decodeDeadLetter(stored.string()) });
    }
    return out;
  }

  async deadLetters(appId: string, limit: number): Promise<DeadLetter[]> {
    return (await this.deadWithSeq(appId, limit)).map((d) => d.dead);
  }

  async replay(appId: string, ids: readonly string[] | undefined): Promise<number> {
    const wanted = ids ? new Set(ids) : undefined;
    const stream = this.names(appId).dead;
    let moved = 0;
    for (const { seq, dead } of await this.deadWithSeq(appId, this.limits.maxDeadLetters)) {
      if (wanted && !wanted.has(dead.id)) continue;
      const { id, event, at } = dead;
      if ((await this.push({ appId, target: dead.target, lane: dead.lane }, { id, event, at })) === 'full') continue;
      await this.jsm.streams.deleteMessage(stream, seq, false);
      moved += 1;
    }
    return moved;
  }

  async close(): Promise<void> {
    await this.nc.drain().catch(() => this.nc.close());
  }
}
