import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HookRunner, type HookResult } from '../../src/embedding/hooks.js';
import { InboundOrder } from '../../src/embedding/inbound-order.js';
import { MetadataError, boundedMetadata } from '../../src/embedding/metadata.js';
import { createLogger } from '../../src/log.js';

const conn = { id: '1.2', appId: 'app' };

function runner(timeoutMs = 50): { runner: HookRunner; failures: string[] } {
  const failures: string[] = [];
  return { runner: new HookRunner({}, { timeoutMs, log: createLogger('silent'), countFailure: (appId) => failures.push(appId) }), failures };
}

describe('HookRunner', () => {
  it('answers a hook that returns a plain value synchronously: no promise on that path', () => {
    const { runner: r } = runner();
    const result = r.run('publish', (x: number) => x + 1, 1, conn);
    assert.ok(!(result instanceof Promise));
    assert.deepEqual(result, { ok: true, value: 2 });
  });

  it('contains a throw, synchronously, and counts it', () => {
    const { runner: r, failures } = runner();
    const result = r.run('publish', () => {
      throw new Error('boom');
    }, undefined, conn);
    assert.deepEqual(result, { ok: false, why: 'threw' });
    assert.deepEqual(failures, ['app']);
  });

  it('waits for a promise; contains a rejection', async () => {
    const { runner: r, failures } = runner();
    assert.deepEqual(await r.run('publish', () => Promise.resolve('v'), undefined, conn), { ok: true, value: 'v' });
    assert.deepEqual(await r.run('publish', () => Promise.reject(new Error('no')), undefined, conn), { ok: false, why: 'threw' });
    assert.deepEqual(failures, ['app']);
  });

  it('gives up on a promise after the timeout; a rejection after that is not unhandled', async () => {
    const { runner: r, failures } = runner(30);
    let rejectLater: (err: Error) => void = () => undefined;
    const started = Date.now();
    const result = await r.run('publish', () => new Promise((_resolve, reject) => (rejectLater = reject)), undefined, conn);
    assert.deepEqual(result, { ok: false, why: 'timeout' } satisfies HookResult<unknown>);
    assert.ok(Date.now() - started >= 25);
    rejectLater(new Error('too late'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(failures, ['app']);
  });
});

describe('InboundOrder', () => {
  it('runs tasks at once while nothing waits', () => {
    const order = new InboundOrder(2, (err) => assert.fail(String(err)));
    const ran: number[] = [];
    order.run(() => void ran.push(1));
    order.run(() => void ran.push(2));
    assert.deepEqual(ran, [1, 2]);
  });

  it('holds later tasks behind a pending one, in order, and refuses past its bound', async () => {
    const order = new InboundOrder(2, (err) => assert.fail(String(err)));
    const ran: string[] = [];
    let release: () => void = () => undefined;
    order.run(() => new Promise<void>((resolve) => (release = resolve)).then(() => void ran.push('slow')));
    assert.equal(order.run(() => void ran.push('a')), true);
    assert.equal(order.run(() => void ran.push('b')), true);
    assert.equal(order.run(() => void ran.push('c')), false);
    assert.deepEqual(ran, []);
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ran, ['slow', 'a', 'b']);
  });

  it('drops what waits once stopped', async () => {
    const order = new InboundOrder(5, (err) => assert.fail(String(err)));
    const ran: string[] = [];
    let release: () => void = () => undefined;
    order.run(() => new Promise<void>((resolve) => (release = resolve)));
    order.run(() => void ran.push('late'));
    order.stop();
    release();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(ran, []);
  });
});

describe('boundedMetadata', () => {
  it('keeps a JSON copy: a later change to the caller’s object does not reach it', () => {
    const mine = { tags: ['a'] };
    const kept = boundedMetadata(mine, 100) as { tags: string[] };
    mine.tags.push('b'.repeat(200));
    assert.deepEqual(kept, { tags: ['a'] });
  });

  it('refuses more than the bound, counted in UTF-8 bytes of JSON', () => {
    assert.deepEqual(boundedMetadata('é'.repeat(4), 10), 'éééé'); // 10 bytes with the quotes
    assert.throws(() => boundedMetadata('é'.repeat(5), 10), (err: unknown) => err instanceof MetadataError && /is 12 bytes as JSON; the limit is 10/.test(err.message));
  });

  it('refuses what JSON cannot hold, and clears with undefined', () => {
    assert.throws(() => boundedMetadata(() => 1, 100), /must serialise to JSON \(got a function\)/);
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    assert.throws(() => boundedMetadata(loop, 100), MetadataError);
    assert.equal(boundedMetadata(undefined, 1), undefined);
  });
});
