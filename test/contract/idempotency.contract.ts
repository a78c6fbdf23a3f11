import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IdempotencyStore } from '../../src/core/idempotency.js';
import { eventually } from '../helpers/wait.js';

/**
 * One contract for every idempotency store. A runner (test/integration/idempotency-stores.test.ts)
 * opens stores that share one backing service, as separate nodes would.
 */
export interface IdempotencyStoreUnderTest {
  readonly name: string;
  unavailable(): Promise<string | undefined>;
  /** A store on the shared backing (another "node" each call) with this window. */
  open(windowMs: number): Promise<IdempotencyStore>;
  /** Lets `ms` pass for the store (a real wait, or a moved clock). */
  pass(ms: number): Promise<void>;
  cleanup?(): Promise<void>;
}

/** Long enough that no test outlives it by accident on a loaded machine. */
const WINDOW_MS = 60_000;

export async function idempotencySuite(target: IdempotencyStoreUnderTest): Promise<void> {
  const why = await target.unavailable();
  await describe(`idempotency store contract: ${target.name}`, { skip: why }, async () => {
    const stores: IdempotencyStore[] = [];
    const open = async (windowMs = WINDOW_MS) => {
      const s = await target.open(windowMs);
      stores.push(s);
      return s;
    };
    let store: IdempotencyStore;
    let run = 0;
    const key = () => `k-${process.pid}-${Date.now()}-${(run += 1)}`;

    before(async () => {
      store = await open();
    });
    after(async () => {
      for (const s of stores) await s.close();
      await target.cleanup?.();
    });

    it('lets a key through once, and refuses it again within the window', async () => {
      const k = key();
      assert.equal(await store.claim('app', k), true);
      assert.equal(await store.claim('app', k), false);
      assert.equal(await store.claim('app', k), false);
    });

    it('keeps apps and keys apart', async () => {
      const k = key();
      assert.equal(await store.claim('app', k), true);
      assert.equal(await store.claim('other-app', k), true);
      assert.equal(await store.claim('app', `${k}x`), true);
    });

    it('lets exactly one of several nodes claiming one key at once through', async () => {
      const nodes = [store, await open(), await open()];
      const k = key();
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => nodes[i % 3].claim('app', k)));
      assert.equal(answers.filter(Boolean).length, 1);
    });

    it('frees a key once the window has passed', async () => {
      const short = await open(1_000);
      const k = key();
      assert.equal(await short.claim('app', k), true);
      await target.pass(1_100);
      // Expiry is the engine's (JetStream ages messages out on its own timer): wait for it, bounded.
      await eventually(() => short.claim('app', k), `key ${k} free after its window`, 10_000, 200);
    });

    it('takes keys with the characters a client may send (base64, UUIDs, colons and slashes)', async () => {
      const odd = `${key()}:a/b+c=d_e-f.g~h`;
      assert.equal(await store.claim('app', odd), true);
      assert.equal(await store.claim('app', odd), false);
    });
  });
}
