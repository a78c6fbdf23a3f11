import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryHistoryStore } from '../../src/core/memory-history.js';

const LIMITS = { size: 50, ttlSeconds: 60 };

it('holds at most twice `size` messages of a channel flooded far beyond it, and reads back the last `size`', async () => {
  const store = new MemoryHistoryStore();
  try {
    let most = 0;
    for (let i = 1; i <= 100_000; i += 1) {
      await store.append('app', 'flooded', { event: 'e', data: String(i) }, LIMITS);
      most = Math.max(most, store.held);
    }
    assert.ok(most <= 2 * LIMITS.size, `held at most ${most}`);
    const page = await store.read('app', 'flooded', undefined, 1000, LIMITS);
    assert.equal(page.top, 100_000);
    assert.deepEqual([page.messages.length, page.oldest, page.messages.at(-1)?.data], [LIMITS.size, 100_000 - LIMITS.size + 1, '100000']);
  } finally {
    await store.close();
  }
});

it('lets go of every channel whose messages aged past ttlSeconds', async () => {
  let clock = 0;
  const store = new MemoryHistoryStore(() => clock);
  try {
    for (let c = 0; c < 1000; c += 1) for (let i = 0; i < 10; i += 1) await store.append('app', `ch-${c}`, { event: 'e', data: 'x' }, LIMITS);
    assert.equal(store.held, 10_000);
    clock += LIMITS.ttlSeconds * 1000 - 1;
    store.sweepExpired();
    assert.equal(store.held, 10_000);
    clock += 1;
    store.sweepExpired();
    assert.equal(store.held, 0);
  } finally {
    await store.close();
  }
});
