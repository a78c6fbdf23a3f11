import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigAppStore } from '../../src/apps/config-store.js';
import { AppResolver } from '../../src/apps/resolver.js';
import { appSchema } from '../../src/config/schema.js';
import { createLogger } from '../../src/log.js';

const apps = [appSchema.parse({ id: 'a', key: 'a-key', secret: 'a-secret' })];

function resolver(now: () => number, negativeCacheSize = 100): AppResolver {
  return new AppResolver(new ConfigAppStore(apps), { ttlMs: 1_000, negativeCacheSize, now }, createLogger('silent'));
}

describe('AppResolver: a connection storm is not a query storm', () => {
  it('asks the store once for many concurrent look-ups of one key, then answers from the cache until the TTL', async () => {
    let t = 0;
    const r = resolver(() => t);
    const found = await Promise.all(Array.from({ length: 200 }, () => Promise.resolve(r.byKey('a-key'))));
    assert.ok(found.every((app) => app?.id === 'a'));
    assert.equal(r.storeQueries, 1);
    assert.equal((r.byKey('a-key') as { id: string }).id, 'a', 'answered at once, no promise');
    assert.equal(r.cachedById('a')?.key, 'a-key');
    t = 1_001;
    await r.byKey('a-key');
    assert.equal(r.storeQueries, 2, 're-read after the TTL');
  });

  it('remembers unknown keys for the TTL, and only as many as the negative cache holds', async () => {
    let t = 0;
    const r = resolver(() => t, 2);
    for (let i = 0; i < 5; i++) assert.equal(await r.byKey('nope-1'), undefined);
    assert.equal(r.storeQueries, 1);
    await r.byKey('nope-2');
    await r.byKey('nope-3'); // the bound drops nope-1, the oldest
    assert.equal(r.storeQueries, 3);
    await r.byKey('nope-1');
    assert.equal(r.storeQueries, 4);
    await r.byKey('nope-3');
    assert.equal(r.storeQueries, 4, 'still remembered');
    t = 1_001;
    await r.byKey('nope-3');
    assert.equal(r.storeQueries, 5, 'forgotten after the TTL');
  });
});
