import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { channelKind, isValidChannelName, serverToUserChannel } from '../../src/core/channels.js';

describe('channelKind', () => {
  const cases: Array<[string, { isPrivate: boolean; isPresence: boolean; isEncrypted: boolean; isCache: boolean; serverToUser: string | undefined }]> = [
    ['orders', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: false, serverToUser: undefined }],
    ['private-orders', { isPrivate: true, isPresence: false, isEncrypted: false, isCache: false, serverToUser: undefined }],
    ['private-encrypted-orders', { isPrivate: true, isPresence: false, isEncrypted: true, isCache: false, serverToUser: undefined }],
    ['presence-room', { isPrivate: true, isPresence: true, isEncrypted: false, isCache: false, serverToUser: undefined }],
    ['cache-prices', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: true, serverToUser: undefined }],
    ['private-cache-prices', { isPrivate: true, isPresence: false, isEncrypted: false, isCache: true, serverToUser: undefined }],
    ['private-encrypted-cache-prices', { isPrivate: true, isPresence: false, isEncrypted: true, isCache: true, serverToUser: undefined }],
    ['presence-cache-room', { isPrivate: true, isPresence: true, isEncrypted: false, isCache: true, serverToUser: undefined }],
    ['#server-to-user-42', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: false, serverToUser: '42' }],
    // Prefixes count only at the start of the name.
    ['my-private-orders', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: false, serverToUser: undefined }],
    ['public-cache-x', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: false, serverToUser: undefined }],
    ['private', { isPrivate: false, isPresence: false, isEncrypted: false, isCache: false, serverToUser: undefined }],
  ];
  for (const [name, kind] of cases) {
    it(`reads ${name}`, () => assert.deepEqual(channelKind(name), kind));
  }

  it('serverToUserChannel builds the name channelKind reads back', () => {
    assert.equal(serverToUserChannel('u-7'), '#server-to-user-u-7');
    assert.equal(channelKind(serverToUserChannel('u-7')).serverToUser, 'u-7');
  });
});

describe('isValidChannelName', () => {
  it("accepts Pusher's whole character set", () => {
    assert.equal(isValidChannelName('AZaz09_-=@,.;', 200), true);
    assert.equal(isValidChannelName('private-encrypted-a.b;c=d@e,f', 200), true);
  });

  for (const bad of ['has space', 'slash/', 'colon:', 'hash#', 'star*', 'quote"', 'ünïcode', 'tab\t', 'new\nline', 'plus+', 'question?', 'pct%20']) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.equal(isValidChannelName(bad, 200), false));
  }

  it('refuses the empty string and non-strings', () => {
    assert.equal(isValidChannelName('', 200), false);
    for (const v of [undefined, null, 42, ['a'], { name: 'a' }]) assert.equal(isValidChannelName(v, 200), false);
  });

  it('accepts exactly maxLength characters and refuses one more', () => {
    assert.equal(isValidChannelName('a'.repeat(200), 200), true);
    assert.equal(isValidChannelName('a'.repeat(201), 200), false);
    assert.equal(isValidChannelName('abc', 2), false);
  });

  it('accepts #server-to-user-{id} (the one name with #) but not without an id', () => {
    assert.equal(isValidChannelName('#server-to-user-42', 200), true);
    assert.equal(isValidChannelName('#server-to-user-', 200), false);
    assert.equal(isValidChannelName('#server-to-user', 200), false);
    assert.equal(isValidChannelName('#other-42', 200), false);
  });

  it('applies the length limit to #server-to-user- names too', () => {
    assert.equal(isValidChannelName(`#server-to-user-${'1'.repeat(200)}`, 200), false);
  });
});
