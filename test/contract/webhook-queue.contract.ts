import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LaneRef, Lease, QueueEntry, QueueLimits, WebhookQueue } from '../../src/webhooks/queue.js';

/**
 * The one contract of a webhook queue, run on every implementation. `a` and `b` stand for two
 * nodes: two clients of one engine (the memory queue has one process, so both are the same).
 */
export interface QueuePair {
  readonly a: WebhookQueue;
  readonly b: WebhookQueue;
  close(): Promise<void>;
}

export interface QueueSuiteOptions {
  readonly name: string;
  /** Why this implementation cannot be tested here, if it cannot. */
  readonly unavailable: () => Promise<string | undefined>;
  readonly open: (limits: QueueLimits) => Promise<QueuePair>;
  /** How long a take on an empty lane may wait at least (JetStream pulls wait 1 s at least). */
  readonly emptyWaitMs: number;
}

const LIMITS: QueueLimits = { maxEntries: 5, maxBytes: 64 * 1024, maxDeadLetters: 3, leaseMs: 2_500 };

function entry(n: number, channel = 'room'): QueueEntry {
  return { id: randomUUID(), event: { name: 'client_event', channel, data: String(n) }, at: 1_000 + n };
}

let laneSeq = 0;
/** A lane no other case uses (an app of its own, so bounds do not mix either). */
function freshLane(): LaneRef {
  laneSeq += 1;
  return { appId: `app-${laneSeq}-${randomUUID().slice(0, 8)}`, target: 't0', lane: 0 };
}

export async function webhookQueueSuite(options: QueueSuiteOptions): Promise<void> {
  const skip = await options.unavailable();
  describe(`webhook queue contract: ${options.name}`, { skip }, () => {
    let pair: QueuePair;
    before(async () => {
      pair = await options.open(LIMITS);
    });
    after(async () => {
      await pair?.close();
    });

    const take = async (q: WebhookQueue, ref: LaneRef, max = 1): Promise<Lease | undefined> => q.take(ref, max, options.emptyWaitMs);

    it('gives a lane its entries in push order, at most `max` per lease, and acked ones do not come back', async () => {
      const ref = freshLane();
      const pushed = [entry(1), entry(2), entry(3)];
      for (const e of pushed) assert.equal(await pair.a.push(ref, e), 'queued');
      const first = await take(pair.b, ref, 2);
      assert.deepEqual(first?.entries, pushed.slice(0, 2));
      await first?.ack();
      const second = await take(pair.a, ref, 2);
      assert.deepEqual(second?.entries, pushed.slice(2));
      await second?.ack();
      assert.equal(await take(pair.b, ref), undefined);
    });

    it('lets one taker at a time have a lane; another lane is free meanwhile', async () => {
      const ref = freshLane();
      const other = { ...ref, lane: 1 };
      await pair.a.push(ref, entry(1));
      await pair.a.push(ref, entry(2));
      await pair.a.push(other, entry(3));
      const held = await take(pair.a, ref);
      assert.ok(held);
      assert.equal(await take(pair.b, ref), undefined);
      const free = await take(pair.b, other);
      assert.equal(free?.entries[0]?.event.data, '3');
      await free?.ack();
      await held.ack();
      assert.equal((await take(pair.b, ref))?.entries[0]?.event.data, '2');
    });

    it('gives released entries, with the same ids, to the next taker', async () => {
      const ref = freshLane();
      const e = entry(1);
      await pair.a.push(ref, e);
      const lease = await take(pair.a, ref);
      await lease?.release();
      const again = await take(pair.b, ref);
      assert.deepEqual(again?.entries, [e]);
      await again?.ack();
    });

    it('gives the entries of a lease that ran out (a dead taker) to another taker, with the same ids', async () => {
      const ref = freshLane();
      const e = entry(1);
      await pair.a.push(ref, e);
      assert.ok(await take(pair.a, ref)); // never extended, never acked: the taker "died"
      const started = Date.now();
      let again: Lease | undefined;
      while (!again && Date.now() - started < LIMITS.leaseMs * 4) {
        again = await take(pair.b, ref);
        if (!again) await new Promise((resolve) => setTimeout(resolve, 50)); // an empty take may answer at once: leave the loop room
      }
      assert.deepEqual(again?.entries, [e]);
      assert.ok(Date.now() - started >= LIMITS.leaseMs * 0.8, `taken again after ${Date.now() - started} ms, before the lease ran out`);
      await again?.ack();
    });

    it('keeps a lease that is extended past its period', async () => {
      const ref = freshLane();
      await pair.a.push(ref, entry(1));
      const lease = await take(pair.a, ref);
      assert.ok(lease);
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, LIMITS.leaseMs / 3));
        assert.equal(await lease.extend(), true);
      }
      assert.equal(await pair.b.take(ref, 1, 0), undefined, 'taken while extended');
      await lease.ack();
    });

    it('refuses a push past the app bound in entries, over all its lanes, and stores nothing of it', async () => {
      const ref = freshLane();
      for (let i = 0; i < LIMITS.maxEntries; i++) assert.equal(await pair.a.push({ ...ref, lane: i % 2 }, entry(i)), 'queued');
      assert.equal(await pair.b.push({ ...ref, lane: 3 }, entry(99)), 'full');
      const lease = await take(pair.a, ref, 5);
      await lease?.ack();
      assert.equal(await pair.b.push({ ...ref, lane: 3 }, entry(100)), 'queued', 'room again once delivered');
      const lane3 = await take(pair.a, { ...ref, lane: 3 });
      assert.deepEqual(lane3?.entries.map((e) => e.event.data), ['100']);
    });

    it('refuses a push past the app bound in bytes', async () => {
      const small = { ...LIMITS, maxBytes: 2_000 };
      const queues = await options.open(small);
      try {
        const ref = freshLane();
        const big = (n: number): QueueEntry => ({ ...entry(n), event: { name: 'client_event', channel: 'room', data: 'x'.repeat(600) } });
        let accepted = 0;
        while ((await queues.a.push(ref, big(accepted))) === 'queued') accepted += 1;
        assert.ok(accepted >= 2 && accepted <= 3, `${accepted} entries of ~700 bytes under a 2000-byte bound`);
      } finally {
        await queues.close();
      }
    });

    it('moves buried entries to capped dead letters (oldest go first) and replays them with their ids', async () => {
      const ref = freshLane();
      const entries = [entry(1), entry(2), entry(3), entry(4)];
      for (const e of entries) await pair.a.push(ref, e);
      for (let i = 0; i < entries.length; i++) {
        const lease = await take(pair.a, ref);
        await lease?.bury(5_000 + i, 'status 500');
      }
      const dead = await pair.b.deadLetters(ref.appId, 10);
      assert.deepEqual(dead.map((d) => d.id), entries.slice(1).map((e) => e.id), 'capped at 3, oldest gone');
      assert.deepEqual(dead[0], { ...entries[1], target: ref.target, lane: ref.lane, failedAt: 5_001, reason: 'status 500' });
      assert.equal(await take(pair.b, ref), undefined, 'buried entries left the lane');
      assert.equal(await pair.b.replay(ref.appId, [entries[2].id]), 1);
      assert.deepEqual((await pair.a.deadLetters(ref.appId, 10)).map((d) => d.id), [entries[1].id, entries[3].id]);
      const back = await take(pair.a, ref);
      assert.deepEqual(back?.entries, [entries[2]]);
      await back?.ack();
      assert.equal(await pair.a.replay(ref.appId, undefined), 2);
      assert.deepEqual(await pair.a.deadLetters(ref.appId, 10), []);
      // One at a time: a lane is taken with the same `max` throughout (JetStream fixes it per consumer).
      const next = await take(pair.b, ref);
      await next?.ack();
      const last = await take(pair.b, ref);
      assert.deepEqual([next?.entries[0]?.id, last?.entries[0]?.id], [entries[1].id, entries[3].id]);
    });

    it('keeps a dead letter that does not fit under the bound when replayed', async () => {
      const ref = freshLane();
      await pair.a.push(ref, entry(0));
      await (await take(pair.a, ref))?.bury(1, 'status 500');
      for (let i = 1; i <= LIMITS.maxEntries; i++) await pair.a.push({ ...ref, lane: 1 }, entry(i));
      assert.equal(await pair.b.replay(ref.appId, undefined), 0);
      assert.equal((await pair.b.deadLetters(ref.appId, 10)).length, 1);
    });
  });
}
