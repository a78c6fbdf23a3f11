import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { ClientAddressResolver, isAddressOrRange } from '../../src/util/client-address.js';

function request(peer: string, forwardedFor?: string): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers: forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor } } as unknown as IncomingMessage;
}

describe('ClientAddressResolver', () => {
  const behindProxies = new ClientAddressResolver(['127.0.0.1', '10.0.0.0/8', 'fd00::/8']);

  it('uses the TCP peer and ignores X-Forwarded-For when no proxy is trusted', () => {
    assert.equal(new ClientAddressResolver([]).of(request('127.0.0.1', '203.0.113.7')), '127.0.0.1');
  });

  it('ignores X-Forwarded-For from a peer that is not a trusted proxy (anyone can send it)', () => {
    assert.equal(behindProxies.of(request('198.51.100.9', '203.0.113.7')), '198.51.100.9');
  });

  it('takes the address a trusted proxy reports', () => {
    assert.equal(behindProxies.of(request('127.0.0.1', '203.0.113.7')), '203.0.113.7');
  });

  it('walks back through trusted proxies and stops at the first address that is not one', () => {
    // The leftmost entry came from the client itself and may be forged.
    assert.equal(behindProxies.of(request('127.0.0.1', '198.51.100.1, 203.0.113.7, 10.1.2.3')), '203.0.113.7');
  });

  it('a chain of trusted addresses only ends at its leftmost entry', () => {
    assert.equal(behindProxies.of(request('10.0.0.1', '10.0.0.2, 10.0.0.3')), '10.0.0.2');
  });

  it('does not believe entries beyond a malformed one', () => {
    assert.equal(behindProxies.of(request('127.0.0.1', '203.0.113.7, not-an-ip')), '127.0.0.1');
    assert.equal(behindProxies.of(request('127.0.0.1', 'not-an-ip, 203.0.113.7')), '203.0.113.7');
  });

  it('treats an IPv4 peer seen on a dual-stack socket (::ffff:a.b.c.d) as its IPv4 address', () => {
    assert.equal(behindProxies.of(request('::ffff:127.0.0.1', '203.0.113.7')), '203.0.113.7');
    assert.equal(new ClientAddressResolver([]).of(request('::ffff:192.0.2.1')), '192.0.2.1');
  });

  it('matches IPv6 ranges', () => {
    assert.equal(behindProxies.of(request('fd12::1', '2001:db8::5')), '2001:db8::5');
    assert.equal(behindProxies.of(request('2001:db8::9', '2001:db8::5')), '2001:db8::9');
  });
});

describe('isAddressOrRange', () => {
  it('accepts addresses and CIDR ranges of both families', () => {
    for (const ok of ['127.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '::1', 'fd00::/8', '2001:db8::/128']) assert.ok(isAddressOrRange(ok), ok);
  });
  it('refuses names, bad prefixes and junk', () => {
    for (const bad of ['localhost', '10.0.0.0/33', '::1/129', '10.0.0.0/8/1', '10.0.0.0/x', '', '300.1.1.1']) assert.ok(!isAddressOrRange(bad), bad);
  });
});
