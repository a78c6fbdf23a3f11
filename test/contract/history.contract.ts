import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { reachesBack, type HistoryLimits, type HistoryStore } from '../../src/core/history.js';

/**
 * One contract for every history store. A runner (test/integration/history-stores.test.ts)
 * opens stores that share one backing service, as separate nodes would, each with a clock the
 * test moves.
 */
export interface HistoryStoreUnderTest {
  readonly name: string;
  unavailable(): Promise<string | undefined>;
  /** A store on the shared backing (a new connection each call: another "node"); `now` is its clock. */
  open(now: () => number): Promise<HistoryStore>;
  /** Removes what the run left behind. */
  cleanup?(): Promise<void>;
}

const LIMITS: HistoryLimits = { size: 5, ttlSeconds: 60 };
const entry = (n: number) => ({ event: 'e', data: `m${n}` });

export async function historySuite(target: HistoryStoreUnderTest): Promise<void> {
  const why = await target.unavailable();
  await describe(`history store contract: ${target.name}`, { skip: why }, async () => {
    let clock = Date.now();
    const now = () => clock;
    const stores: HistoryStore[] = [];
    const open = async () => {
      const s = await target.open(now);
      stores.push(s);
      return s;
    };
    let store: HistoryStore;
    let run = 0;
    const channel = () => `chat-${process.pid}-${Date.now()}-${(run += 1)}`;

    before(async () => {
      store = await open();
    });
    after(async () => {
      for (const s of stores) await s.close();
      await target.cleanup?.();
    });

    it('gives offsets 1, 2, 3 in one epoch and reads back what followed a position, in order', async () => {
      const ch = channel();
      const positions = [];
      for (let i = 1; i <= 3; i += 1) positions.push(await store.append('app', ch, entry(i), LIMITS));
      assert.deepEqual(positions.map((p) => p.offset), [1, 2, 3]);
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
      const page = await store.read('app', ch, 1, 100, LIMITS);
      assert.equal(page.epoch, positions[0].epoch);
      assert.equal(page.top, 3);
      assert.deepEqual(page.messages.map((m) => [m.offset, m.data]), [[2, 'm2'], [3, 'm3']]);
      assert.ok(reachesBack(page, positions[0]));
    });

    it('hands out one offset per message when several nodes append to a channel at once', async () => {
      const nodes = [store, await open(), await open()];
      const ch = channel();
      const big = { size: 100, ttlSeconds: 60 };
      const positions = await Promise.all(Array.from({ length: 30 }, (_, i) => nodes[i % 3].append('app', ch, entry(i), big)));
      assert.deepEqual(positions.map((p) => p.offset).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 1));
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
      const page = await nodes[1].read('app', ch, 0, 100, big);
      assert.deepEqual(page.messages.map((m) => m.offset), Array.from({ length: 30 }, (_, i) => i + 1));
      // Each message is stored under the offset its append was given.
      const byOffset = new Map(page.messages.map((m) => [m.offset, m.data]));
      positions.forEach((p, i) => assert.equal(byOffset.get(p.offset), `m${i}`));
    });

    it('keeps at most `size` messages, and says when a position is too old to resume from', async () => {
      const ch = channel();
      const first = await store.append('app', ch, entry(1), LIMITS);
      for (let i = 2; i <= 12; i += 1) await store.append('app', ch, entry(i), LIMITS);
      const page = await store.read('app', ch, undefined, 100, LIMITS);
      assert.deepEqual(page.messages.map((m) => m.offset), [8, 9, 10, 11, 12]);
      assert.equal(page.oldest, 8);
      assert.equal(reachesBack(page, { epoch: first.epoch, offset: 7 }), true);
      assert.equal(reachesBack(page, { epoch: first.epoch, offset: 6 }), false);
      assert.equal(reachesBack(page, { epoch: 'another', offset: 10 }), false);
      assert.equal(reachesBack(page, { epoch: first.epoch, offset: 13 }), false);
    });

    it('reads the newest `limit` messages, or the oldest after a position', async () => {
      const ch = channel();
      for (let i = 1; i <= 5; i += 1) await store.append('app', ch, entry(i), LIMITS);
      assert.deepEqual((await store.read('app', ch, undefined, 2, LIMITS, true)).messages.map((m) => m.offset), [4, 5]);
      assert.deepEqual((await store.read('app', ch, 1, 2, LIMITS)).messages.map((m) => m.offset), [2, 3]);
    });

    it('drops messages older than ttlSeconds and starts a new epoch once all have aged out', async () => {
      const ch = channel();
      const p1 = await store.append('app', ch, entry(1), LIMITS);
      clock += 30_000;
      await store.append('app', ch, entry(2), LIMITS);
      clock += 31_000; // the first is now 61 s old, the second 31 s
      const page = await store.read('app', ch, 0, 100, LIMITS);
      assert.deepEqual(page.messages.map((m) => m.offset), [2]);
      assert.equal(reachesBack(page, p1), true);
      assert.equal(reachesBack(page, { epoch: p1.epoch, offset: 0 }), false);
      clock += 60_000;
      const p3 = await store.append('app', ch, entry(3), LIMITS);
      assert.notEqual(p3.epoch, p1.epoch);
      assert.equal(p3.offset, 1);
      assert.equal(reachesBack(await store.read('app', ch, 2, 100, LIMITS), { epoch: p1.epoch, offset: 2 }), false);
    });

    it('keeps channels and apps apart, and keeps binary and JSON flags', async () => {
      const ch = channel();
      await store.append('app', ch, { event: 'a', data: 'AAEC', binary: true }, LIMITS);
      await store.append('other-app', ch, { event: 'b', data: '{"x":1}', dataIsJson: true, userId: 'u1' }, LIMITS);
      const a = await store.read('app', ch, 0, 10, LIMITS);
      const b = await store.read('other-app', ch, 0, 10, LIMITS);
      assert.deepEqual(a.messages.map((m) => [m.offset, m.event, m.data, m.binary]), [[1, 'a', 'AAEC', true]]);
      assert.deepEqual(b.messages.map((m) => [m.offset, m.event, m.dataIsJson, m.userId]), [[1, 'b', true, 'u1']]);
    });

    it('answers an empty page (top 0) for a channel with no history', async () => {
      const page = await store.read('app', channel(), 0, 10, LIMITS);
      assert.equal(page.top, 0);
      assert.deepEqual(page.messages, []);
      assert.equal(reachesBack(page, { epoch: 'old', offset: 3 }), false);
    });

    it('keeps the epoch an empty channel was read in, on every node, for its first message: a subscriber that saw nothing resumes', async () => {
      const other = await open();
      const ch = channel();
      const seen = await store.read('app', ch, undefined, 10, LIMITS);
      assert.equal((await other.read('app', ch, undefined, 10, LIMITS)).epoch, seen.epoch, 'one epoch for an empty channel, read twice from two nodes');
      const first = await other.append('app', ch, entry(1), LIMITS);
      assert.deepEqual(first, { epoch: seen.epoch, offset: 1 });
      const page = await store.read('app', ch, 0, 10, LIMITS);
      assert.ok(reachesBack(page, { epoch: seen.epoch, offset: 0 }));
      assert.deepEqual(page.messages.map((m) => [m.offset, m.data]), [[1, 'm1']]);
      clock += 61_000; // the empty epoch, and then its message, age out: a new epoch, never a gap
      assert.notEqual((await store.read('app', ch, undefined, 10, LIMITS)).epoch, seen.epoch);
    });
  });
}
