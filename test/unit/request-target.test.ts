import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestTarget } from '../../src/util/request-target.js';

function parse(raw: string): RequestTarget {
  const target = RequestTarget.parse(raw);
  assert.ok(target, `no target for ${raw}`);
  return target;
}

describe('request target', () => {
  it('splits an origin-form target into the path as sent and its query', () => {
    const t = parse('/apps/1/events?auth_key=k&body_md5=abc&x=a%20b');
    assert.equal(t.pathname, '/apps/1/events');
    assert.equal(t.searchParams.get('auth_key'), 'k');
    assert.equal(t.searchParams.get('x'), 'a b');
  });

  it('has an empty query without "?" and drops a fragment', () => {
    assert.equal(parse('/up').searchParams.size, 0);
    const t = parse('/apps/1/channels?filter_by_prefix=presence-#top');
    assert.equal(t.pathname, '/apps/1/channels');
    assert.equal(t.searchParams.get('filter_by_prefix'), 'presence-');
  });

  it('keeps percent-encoding and dot segments in the path as the client signed them', () => {
    assert.equal(parse('/apps/my%20app/events').pathname, '/apps/my%20app/events');
    assert.equal(parse('/apps/../up').pathname, '/apps/../up');
  });

  it('reads an absolute-form target (as proxies send) through the URL parser', () => {
    const t = parse('http://switchboard.internal:6001/apps/1/events?auth_key=k');
    assert.equal(t.pathname, '/apps/1/events');
    assert.equal(t.searchParams.get('auth_key'), 'k');
  });

  it('reads one parameter exactly as URLSearchParams does', () => {
    const queries = [
      'protocol=7&client=js&version=8.4.0&flash=false',
      'client=js&protocol=7',
      'protocol=7&protocol=5',
      'protocol',
      'protocol=&x=1',
      'protocolx=1&protocol=6',
      'xprotocol=1',
      'a=1&&protocol=a=b&',
      '=7&protocol=%37',
      'pro%74ocol=8',
      'protocol=7+1',
      '?protocol=7',
      '',
      '&',
    ];
    for (const query of queries) {
      for (const name of ['protocol', 'x', 'a', '']) {
        const expected = new URLSearchParams(query).get(name);
        assert.equal(parse(`/app/key?${query}`).param(name), expected, `param(${JSON.stringify(name)}) of ${JSON.stringify(query)}`);
      }
    }
  });

  it('has no target for what the URL parser cannot read (the caller answers 400)', () => {
    assert.equal(RequestTarget.parse('http://[::1/apps'), undefined);
  });
});
