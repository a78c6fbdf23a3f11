import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serializeError } from '../../src/log.js';

describe('error serialisation in logs', () => {
  it('keeps the message but drops the command a client library attached (ioredis: claim ids)', () => {
    const err = Object.assign(new Error('OOM command not allowed'), {
      name: 'ReplyError',
      command: { name: 'set', args: ['switchboard:claim:a:SECRET-CLAIM-ID', '{"id":"SECRET-CLAIM-ID"}'] },
    });
    const out = serializeError(err) as Record<string, unknown>;
    assert.equal(out.message, 'OOM command not allowed');
    assert.ok(!JSON.stringify(out).includes('SECRET-CLAIM-ID'), JSON.stringify(out));
  });

  it('leaves values that are not errors alone', () => {
    assert.equal(serializeError('plain'), 'plain');
  });
});
