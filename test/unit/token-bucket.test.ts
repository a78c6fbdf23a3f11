import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenBucket } from '../../src/core/token-bucket.js';

function bucket(perSecond: number): { bucket: TokenBucket; advance: (ms: number) => void } {
  let now = 5_000_000;
  return { bucket: new TokenBucket(perSecond, () => now), advance: (ms) => (now += ms) };
}

/** Takes until refused (at most `limit` times); returns how many were granted. */
function drain(b: TokenBucket, limit = 1000): number {
  let granted = 0;
  while (granted < limit && b.take()) granted += 1;
  return granted;
}

describe('TokenBucket', () => {
  it('starts full: perSecond takes pass at once, the next is refused', () => {
    const { bucket: b } = bucket(10);
    assert.equal(drain(b), 10);
    assert.equal(b.take(), false);
  });

  it('refills continuously: one token per 1/perSecond seconds', () => {
    const { bucket: b, advance } = bucket(10);
    drain(b);
    advance(99);
    assert.equal(b.take(), false, '0.99 of a token is not enough');
    advance(1);
    assert.equal(b.take(), true);
    assert.equal(b.take(), false);
    advance(500);
    assert.equal(drain(b), 5);
  });

  it('keeps fractions across refused takes', () => {
    const { bucket: b, advance } = bucket(2);
    drain(b);
    advance(250);
    assert.equal(b.take(), false);
    advance(250);
    assert.equal(b.take(), true, 'two quarter-seconds make one token at 2/s');
  });

  it('caps the burst at perSecond however long it was idle', () => {
    const { bucket: b, advance } = bucket(10);
    drain(b);
    advance(60_000);
    assert.equal(drain(b), 10);
  });

  it('a refused take costs nothing', () => {
    const { bucket: b, advance } = bucket(1);
    assert.equal(b.take(), true);
    for (let i = 0; i < 5; i++) assert.equal(b.take(), false);
    advance(1000);
    assert.equal(b.take(), true);
  });

  it('holds a steady rate of perSecond over time', () => {
    const { bucket: b, advance } = bucket(10);
    drain(b);
    let granted = 0;
    for (let ms = 0; ms < 10_000; ms += 10) {
      advance(10);
      if (b.take()) granted += 1;
    }
    assert.equal(granted, 100);
  });
});
