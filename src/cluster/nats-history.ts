import { JetStreamApiError, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { pageOf, type HistoryEntry, type HistoryLimits, type HistoryMessage, type HistoryPage, type HistoryStore, type Position } from '../core/history.js';
import { newEpoch } from '../core/memory-history.js';
import { openOnce } from './open-once.js';

/** One message of a channel, or (o 0, no m) the marker that begins an epoch before any message. */
interface Stored {
  readonly e: string;
  readonly o: number;
  readonly t: number;
  readonly m?: HistoryEntry;
}

/** JetStream's "wrong last sequence" error: another node appended first. */
const WRONG_LAST_SEQUENCE = 10071;
/** Appends racing on one channel retry this often before giving up (each retry means another node won). */
const MAX_APPEND_ATTEMPTS = 50;
const NANOS_PER_MS = 1_000_000;

/**
 * History in a JetStream stream, one subject per channel. The next offset is the last message's
 * plus one, and the append is conditioned on that last message still being the last (expected
 * last subject sequence), so racing nodes cannot hand out one offset twice: the loser re-reads.
 * The stream caps messages per subject and their age at the largest configured limits; smaller
 * per-app limits are applied on read.
 */
export class NatsHistoryStore implements HistoryStore {
  readonly ordersAppends = false;
  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly subjectPrefix: string,
    /** The stream's cap per subject: a read takes at most this many. */
    private readonly maxPerSubject: number,
    private readonly now: () => number,
  ) {}

  static async open(nc: NatsConnection, stream: string, max: HistoryLimits, now: () => number = Date.now): Promise<NatsHistoryStore> {
    const jsm = await jetstreamManager(nc);
    const config = { name: stream, subjects: [`${stream}.>`], max_msgs_per_subject: max.size, max_age: max.ttlSeconds * 1000 * NANOS_PER_MS };
    try {
      await jsm.streams.add(config);
    } catch (err) {
      if (!(err instanceof JetStreamApiError)) throw err;
      await jsm.streams.update(stream, config); // exists with other limits
    }
    return new NatsHistoryStore(jetstream(nc), jsm, stream, stream, max.size, now);
  }

  private subject(appId: string, channel: string): string {
    return `${this.subjectPrefix}.${Buffer.from(appId).toString('base64url')}.${Buffer.from(channel).toString('base64url')}`;
  }

  private async last(subject: string): Promise<{ seq: number; stored: Stored } | null> {
    const msg = await this.jsm.streams.getMessage(this.stream, { last_by_subj: subject });
    return msg ? { seq: msg.seq, stored: msg.json<Stored>() } : null;
  }

  async append(appId: string, channel: string, entry: HistoryEntry, limits: HistoryLimits): Promise<Position> {
    const subject = this.subject(appId, channel);
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt += 1) {
      const last = await this.last(subject);
      const t = this.now();
      // History older than the channel's own limit counts as lost: a new epoch starts.
      const continues = last !== null && last.stored.t > t - limits.ttlSeconds * 1000;
      const e = continues ? last.stored.e : newEpoch();
      const o = continues ? last.stored.o + 1 : 1;
      const body: Stored = { e, o, t, m: entry };
      try {
        await this.js.publish(subject, JSON.stringify(body), { expect: { lastSubjectSequence: last?.seq ?? 0 } });
        return { epoch: e, offset: o };
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.code !== WRONG_LAST_SEQUENCE) throw err;
      }
    }
    throw new Error(`history append on ${channel} lost ${MAX_APPEND_ATTEMPTS} races in a row`);
  }

  /**
   * The newest stored entry of a channel that has history; for one that has none (or whose
   * messages all aged out), an epoch marker appended first, so that the epoch an empty channel's
   * subscriber is told is the one its first message gets.
   */
  private async begun(subject: string, limits: HistoryLimits): Promise<{ seq: number; stored: Stored }> {
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt += 1) {
      const last = await this.last(subject);
      const t = this.now();
      if (last && last.stored.t > t - limits.ttlSeconds * 1000) return last;
      const marker: Stored = { e: newEpoch(), o: 0, t };
      try {
        const ack = await this.js.publish(subject, JSON.stringify(marker), { expect: { lastSubjectSequence: last?.seq ?? 0 } });
        return { seq: ack.seq, stored: marker };
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.code !== WRONG_LAST_SEQUENCE) throw err;
      }
    }
    throw new Error(`history read on ${subject} lost ${MAX_APPEND_ATTEMPTS} races in a row`);
  }

  async read(appId: string, channel: string, after: number | undefined, limit: number, limits: HistoryLimits, newest = false): Promise<HistoryPage> {
    const subject = this.subject(appId, channel);
    const last = await this.begun(subject, limits);
    const cutoff = this.now() - limits.ttlSeconds * 1000;
    const { e: epoch, o: top } = last.stored;
    if (top === 0) return pageOf(epoch, 0, [], after, limit, newest);
    const kept: HistoryMessage[] = [];
    const consumer = await this.js.consumers.get(this.stream, { filter_subjects: subject });
    try {
      const batch = await consumer.fetch({ max_messages: this.maxPerSubject, expires: 2_000 });
      for await (const msg of batch) {
        const s = msg.json<Stored>();
        if (s.m && s.e === epoch && s.t > cutoff && s.o > top - limits.size) kept.push({ ...s.m, offset: s.o, at: s.t });
        if (msg.seq >= last.seq) break; // the newest one read above: the subject's end
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return pageOf(epoch, top, kept, after, limit, newest);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The JetStream store, opened on first use (see openOnce). */
export class LazyNatsHistoryStore implements HistoryStore {
  readonly ordersAppends = false;
  private readonly store: ReturnType<typeof openOnce<HistoryStore>>;

  constructor(open: () => Promise<HistoryStore>) {
    this.store = openOnce(open);
  }

  async append(...args: Parameters<HistoryStore['append']>): Promise<Position> {
    return (await this.store.get()).append(...args);
  }

  async read(...args: Parameters<HistoryStore['read']>): Promise<HistoryPage> {
    return (await this.store.get()).read(...args);
  }

  async close(): Promise<void> {
    await (await this.store.opened()?.catch(() => undefined))?.close();
  }
}
