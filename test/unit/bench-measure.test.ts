import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findMarker, makePayload, readTimestamp } from '../../bench/protocol.js';
import { Histogram } from '../../bench/stats.js';

// The load generator's figures are only as good as these two pieces: every delivered message
// goes through the marker search, and every latency sample through the histogram.

test('histogram percentiles stay within 0.1 % of the exact value, from 0 µs to beyond 2^31 µs', () => {
  const values = [0, 1, 7, 2047, 2048, 2049, 3000, 16_383, 16_384, 123_456, 999_999, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 12_345, 3 * 2 ** 40];
  for (const v of values) {
    const h = new Histogram();
    // One larger value keeps the exact max from answering for the bucket.
    h.record(v);
    h.record(v * 4 + 10);
    const p50 = h.percentile(50);
    assert.ok(p50 <= v, `p50 of ${v} is ${p50}, above the value`);
    assert.ok(v - p50 <= Math.max(0, v * 0.001), `p50 of ${v} is ${p50}, more than 0.1 % below`);
  }
});

test('histogram ranks follow the values: the k-th smallest of many values is read back as itself (within 0.1 %)', () => {
  const values: number[] = [];
  for (let v = 1; v < 2 ** 34; v = Math.ceil(v * 1.013)) values.push(v);
  const h = new Histogram();
  for (const v of values) h.record(v);
  values.forEach((v, k) => {
    const got = h.percentile(((k + 0.5) / values.length) * 100);
    assert.ok(got <= v && v - got <= v * 0.001, `rank ${k + 1}: ${v} read back as ${got}`);
  });
});

test('histogram p99 of a known distribution', () => {
  const h = new Histogram();
  for (let i = 1; i <= 10_000; i++) h.record(i * 10); // 10 µs … 100 ms
  const p99 = h.percentile(99);
  assert.ok(Math.abs(p99 - 99_000) <= 99, `p99 ${p99}`);
  assert.equal(h.percentile(100), 100_000);
});

test('the marker search finds the timestamp of each frame in a read, and none in a frame without one', () => {
  const a = JSON.stringify({ event: 'e', data: makePayload(100, 1_234_567) });
  const ping = JSON.stringify({ event: 'pusher:ping', data: {} });
  const b = JSON.stringify({ event: 'e', data: makePayload(100, 7_654_321) });
  const buf = Buffer.from(a + ping + b);
  const aEnd = Buffer.byteLength(a);
  const pingEnd = aEnd + Buffer.byteLength(ping);

  const inA = findMarker(buf, 0, aEnd);
  assert.ok(inA > 0);
  assert.equal(readTimestamp(buf, inA, aEnd), 1_234_567);
  // The next frame's marker lies beyond this frame's end: not a hit for the ping.
  assert.equal(findMarker(buf, aEnd, pingEnd), -1);
  const inB = findMarker(buf, pingEnd, buf.length);
  assert.equal(readTimestamp(buf, inB, buf.length), 7_654_321);
});
