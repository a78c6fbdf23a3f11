import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeWire, encodeWire, ownMessagePrefix } from '../../src/cluster/messages.js';

describe('cluster wire messages', () => {
  it('round-trip a channel message with binary data', () => {
    const bytes = encodeWire('node-a', { t: 'pub', a: 'app', m: { kind: 'event', channel: 'c', event: 'e', data: Buffer.from([0, 1, 255]) } });
    const decoded = decodeWire(bytes);
    assert.ok(decoded.ok);
    assert.equal(decoded.envelope.o, 'node-a');
    assert.ok(decoded.envelope.t === 'pub');
    assert.deepEqual(decoded.envelope.m, { kind: 'event', channel: 'c', event: 'e', data: Buffer.from([0, 1, 255]) });
  });

  it('drop messages of another wire version or not JSON', () => {
    assert.deepEqual(decodeWire(Buffer.from('{"v":2,"o":"x","t":"hb"}')), { ok: false, reason: 'version' });
    assert.deepEqual(decodeWire(Buffer.from('not json')), { ok: false, reason: 'malformed' });
  });

  it('recognise a node’s own messages by their opening bytes, and only its own', () => {
    const own = ownMessagePrefix('node-a');
    const starts = (bytes: Buffer, prefix: Buffer): boolean => bytes.subarray(0, prefix.length).equals(prefix);
    assert.ok(starts(encodeWire('node-a', { t: 'hb' }, 7), own));
    assert.ok(starts(encodeWire('node-a', { t: 'pub', a: 'app', m: { kind: 'event', channel: 'c', event: 'e', data: 'd' } }), own));
    assert.ok(!starts(encodeWire('node-ab', { t: 'hb' }), own));
    assert.ok(!starts(encodeWire('node-b', { t: 'hb' }), own));
  });
});
