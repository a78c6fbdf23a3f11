import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHmac } from 'node:crypto';
import type { Switchboard } from '../../src/index.js';
import { RawClient, connected, pusherClient, serverSdk, type PusherJs } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';
import { dataOf, errorOf, pusherSignedIn, rawSignIn, rawSignedIn, rawSubscribed, received, type RawMessage } from '../helpers/users.js';

type WatchlistEvent = { name: string; user_ids: string[] };

const isWatchlist = (m: RawMessage): boolean => m.event === 'pusher_internal:watchlist_events';

describe('user sign-in, send-to-user and terminate (Pusher protocol)', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  function signedInClient(user: Record<string, unknown>): PusherJs {
    return pusherClient(server, { user });
  }

  it('signs a pusher-js client in with user authentication signed by the SDK', async (t) => {
    const client = signedInClient({ id: 'ann', user_info: { name: 'Ann' } });
    t.after(() => client.disconnect());
    await connected(client);
    const success = new Promise<{ user_data: string }>((resolve) => {
      client.connection.bind('message', (m: { event: string; data: { user_data: string } }) => {
        if (m.event === 'pusher:signin_success') resolve(m.data);
      });
    });
    await pusherSignedIn(client, 'ann');
    assert.deepEqual(JSON.parse((await success).user_data), { id: 'ann', user_info: { name: 'Ann' } });
    assert.deepEqual(client.user.user_data, { id: 'ann', user_info: { name: 'Ann' } });
  });

  it('sendToUser reaches every signed-in socket of that user and no other user', async (t) => {
    const alice1 = signedInClient({ id: 'alice' });
    const alice2 = signedInClient({ id: 'alice' });
    const bob = signedInClient({ id: 'bob' });
    t.after(() => [alice1, alice2, bob].forEach((c) => c.disconnect()));
    await Promise.all([pusherSignedIn(alice1, 'alice'), pusherSignedIn(alice2, 'alice'), pusherSignedIn(bob, 'bob')]);

    const got = (client: PusherJs): unknown[] => {
      const list: unknown[] = [];
      client.user.bind('order', (data: unknown) => list.push(data));
      return list;
    };
    const [a1, a2, b] = [got(alice1), got(alice2), got(bob)];
    const a1Got = new Promise((resolve) => alice1.user.bind('order', resolve));
    const a2Got = new Promise((resolve) => alice2.user.bind('order', resolve));
    const bobGot = new Promise((resolve) => bob.user.bind('order', resolve));

    const sdk = serverSdk(server);
    await sdk.sendToUser('alice', 'order', { n: 1 });
    assert.deepEqual(await a1Got, { n: 1 });
    assert.deepEqual(await a2Got, { n: 1 });
    // Bob's own message comes after Alice's on the same server: had he got hers, it would come first.
    await sdk.sendToUser('bob', 'order', { n: 2 });
    assert.deepEqual(await bobGot, { n: 2 });
    assert.deepEqual(b, [{ n: 2 }]);
    assert.deepEqual(a1, [{ n: 1 }]);
    assert.deepEqual(a2, [{ n: 1 }]);
  });

  it("refuses a subscription to another user's #server-to-user channel", async (t) => {
    const sdk = serverSdk(server);
    const anonymous = await RawClient.connect(server);
    const eve = await RawClient.connect(server);
    t.after(() => [anonymous, eve].forEach((c) => c.close()));
    await rawSignedIn(eve, sdk, { id: 'eve' });

    anonymous.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } });
    eve.send({ event: 'pusher:subscribe', data: { channel: '#server-to-user-alice' } });
    for (const raw of [anonymous, eve]) {
      const err = await raw.event('pusher:subscription_error', '#server-to-user-alice');
      assert.deepEqual(dataOf(err), { type: 'AuthError', error: 'Only the signed-in user may subscribe to its own channel', status: 401 });
    }
    // Eve's own channel is hers to subscribe to.
    await rawSubscribed(eve, '#server-to-user-eve');
    assert.equal(eve.messages.filter((m) => m.event === 'pusher_internal:subscription_succeeded' && m.channel === '#server-to-user-alice').length, 0);
  });

  it("terminateUserConnections closes all of a user's sockets with 4009 and leaves others open", async (t) => {
    const sdk = serverSdk(server);
    const [carl1, carl2, dora] = await Promise.all([RawClient.connect(server), RawClient.connect(server), RawClient.connect(server)]);
    t.after(() => [carl1, carl2, dora].forEach((c) => c.close()));
    await Promise.all([rawSignedIn(carl1, sdk, { id: 'carl' }), rawSignedIn(carl2, sdk, { id: 'carl' }), rawSignedIn(dora, sdk, { id: 'dora' })]);
    await rawSubscribed(dora, '#server-to-user-dora');

    await sdk.terminateUserConnections('carl');
    assert.equal(await carl1.closed, 4009);
    assert.equal(await carl2.closed, 4009);
    assert.equal(errorOf(await carl1.event('pusher:error')).code, 4009);

    await sdk.sendToUser('dora', 'still-here', { ok: true });
    const m = await dora.event('still-here', '#server-to-user-dora');
    assert.deepEqual(dataOf(m), { ok: true });
    assert.equal(dora.closeCode, undefined);
  });

  it('closes with 4009 after pusher:error 4009 when the sign-in signature is wrong', async (t) => {
    const raw = await RawClient.connect(server);
    t.after(() => raw.close());
    await raw.socketId();
    raw.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${'0'.repeat(64)}`, user_data: JSON.stringify({ id: 'mallory' }) } });
    assert.equal(await raw.closed, 4009);
    const err = raw.messages.find((m) => m.event === 'pusher:error');
    assert.ok(err, 'a pusher:error precedes the close');
    assert.equal(errorOf(err).code, 4009);
    assert.equal(raw.messages.some((m) => m.event === 'pusher:signin_success'), false);
  });

  it('closes with 4009 when user_data.id is a number or an empty string (it must be a non-empty string)', async (t) => {
    for (const id of [42, '']) {
      const raw = await RawClient.connect(server);
      t.after(() => raw.close());
      // Signed by hand, as a backend without the Node SDK's own check would sign it.
      const userData = JSON.stringify({ id });
      const signature = createHmac('sha256', APP.secret).update(`${await raw.socketId()}::user::${userData}`).digest('hex');
      raw.send({ event: 'pusher:signin', data: { auth: `${APP.key}:${signature}`, user_data: userData } });
      const outcome = await Promise.race([raw.closed.then((code) => `closed ${code}`), raw.event('pusher:signin_success').then(() => 'signed in')]);
      assert.equal(outcome, 'closed 4009', `id ${JSON.stringify(id)}`);
      assert.deepEqual(errorOf(await raw.event('pusher:error')), { code: 4009, message: 'user_data.id must be a non-empty string' });
    }
  });

  it('closes with 4009 when a signed-in connection signs in as a different user', async (t) => {
    const sdk = serverSdk(server);
    const raw = await RawClient.connect(server);
    t.after(() => raw.close());
    await rawSignedIn(raw, sdk, { id: 'first' });
    await rawSignIn(raw, sdk, { id: 'second' });
    assert.equal(await raw.closed, 4009);
    assert.equal(errorOf(await raw.event('pusher:error')).code, 4009);
    assert.equal(raw.messages.filter((m) => m.event === 'pusher:signin_success').length, 1);
  });

  it('answers a second sign-in as the same user with signin_success again', async (t) => {
    const sdk = serverSdk(server);
    const raw = await RawClient.connect(server);
    t.after(() => raw.close());
    await rawSignedIn(raw, sdk, { id: 'same' });
    const second = await rawSignedIn(raw, sdk, { id: 'same', user_info: { n: 2 } }, 2);
    assert.deepEqual(JSON.parse((dataOf(second) as { user_data: string }).user_data), { id: 'same', user_info: { n: 2 } });
    raw.send({ event: 'pusher:ping', data: {} });
    await raw.event('pusher:pong');
    assert.equal(raw.closeCode, undefined);
    assert.equal(raw.messages.some((m) => m.event === 'pusher:error'), false);
  });

  it('lets presence channel_data without user_info take the signed-in user_info', async (t) => {
    const sdk = serverSdk(server);
    const [pat, other] = await Promise.all([RawClient.connect(server), RawClient.connect(server)]);
    t.after(() => [pat, other].forEach((c) => c.close()));
    await rawSubscribed(other, 'presence-lobby', sdk, { user_id: 'other', user_info: { name: 'O' } });
    await rawSignedIn(pat, sdk, { id: 'pat', user_info: { name: 'Pat' } });

    const ok = await rawSubscribed(pat, 'presence-lobby', sdk, { user_id: 'pat' });
    const presence = (dataOf(ok) as { presence: { hash: Record<string, unknown>; count: number } }).presence;
    assert.deepEqual(presence.hash, { other: { name: 'O' }, pat: { name: 'Pat' } });
    assert.equal(presence.count, 2);
    const added = await other.event('pusher_internal:member_added', 'presence-lobby');
    assert.deepEqual(dataOf(added), { user_id: 'pat', user_info: { name: 'Pat' } });
  });
});

describe('watchlist (Pusher protocol)', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  it('reports online/offline on sign-in, then when a watched user comes and goes', async (t) => {
    const sdk = serverSdk(server);
    const carol = await RawClient.connect(server);
    t.after(() => carol.close());
    await rawSignedIn(carol, sdk, { id: 'c' });

    const watcher = pusherClient(server, { user: { id: 'a', watchlist: ['b', 'c'] } });
    t.after(() => watcher.disconnect());
    const events: WatchlistEvent[] = [];
    let wake: () => void = () => {};
    const record = (e: WatchlistEvent): void => {
      events.push(e);
      wake();
    };
    const eventCount = (n: number): Promise<void> =>
      new Promise((resolve) => {
        wake = () => {
          if (events.length >= n) resolve();
        };
        wake();
      });
    watcher.user.watchlist.bind('online', record);
    watcher.user.watchlist.bind('offline', record);
    await pusherSignedIn(watcher, 'a');
    await eventCount(2);
    assert.deepEqual(events, [
      { name: 'online', user_ids: ['c'] },
      { name: 'offline', user_ids: ['b'] },
    ]);

    // b signs in on two sockets: one "online". Its first socket leaving is not "offline": c's
    // sign-out, which follows it, is the next event A sees; b's last socket leaving is.
    const [b1, b2] = await Promise.all([RawClient.connect(server), RawClient.connect(server)]);
    t.after(() => [b1, b2].forEach((c) => c.close()));
    await rawSignedIn(b1, sdk, { id: 'b' });
    await eventCount(3);
    await rawSignedIn(b2, sdk, { id: 'b' });
    // The server has forgotten b1 once a presence peer sees it leave.
    const probe = await RawClient.connect(server);
    t.after(() => probe.close());
    await rawSubscribed(probe, 'presence-probe', sdk, { user_id: 'probe' });
    await rawSubscribed(b1, 'presence-probe', sdk, { user_id: 'b1-socket' });
    b1.close();
    await probe.next((m) => m.event === 'pusher_internal:member_removed' && (dataOf(m) as { user_id: string }).user_id === 'b1-socket');
    carol.close();
    await eventCount(4);
    b2.close();
    await eventCount(5);
    assert.deepEqual(events.slice(2), [
      { name: 'online', user_ids: ['b'] },
      { name: 'offline', user_ids: ['c'] },
      { name: 'offline', user_ids: ['b'] },
    ]);
  });
});

describe('watchlist size limit', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true, maxWatchlistSize: 2 }] });
  });
  after(() => server.close());

  it('keeps the first maxWatchlistSize ids, sends pusher:error 4302 and still signs in', async (t) => {
    const sdk = serverSdk(server);
    const watcher = await RawClient.connect(server);
    t.after(() => watcher.close());
    await rawSignedIn(watcher, sdk, { id: 'w', watchlist: ['x', 'y', 'z'] });
    const err = await watcher.event('pusher:error');
    assert.deepEqual(errorOf(err), { code: 4302, message: 'Watchlist limited to its first 2 user ids' });
    const initial = await watcher.next(isWatchlist);
    assert.deepEqual(dataOf(initial), { events: [{ name: 'offline', user_ids: ['x', 'y'] }] });

    // z is not watched: its sign-in says nothing to w, while y's (after z's) does.
    const [z, y] = await Promise.all([RawClient.connect(server), RawClient.connect(server)]);
    t.after(() => [z, y].forEach((c) => c.close()));
    await rawSignedIn(z, sdk, { id: 'z' });
    await rawSignedIn(y, sdk, { id: 'y' });
    const [, online] = await received(watcher, isWatchlist, 2);
    assert.deepEqual(dataOf(online), { events: [{ name: 'online', user_ids: ['y'] }] });
    assert.equal(watcher.closeCode, undefined);
  });
});

describe('sign-in whose answer does not fit the send queue', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, maxQueueBytes: 2048 }] });
  });
  after(() => server.close());

  it('closes the connection as a slow consumer and leaves the user offline for watchers', async (t) => {
    const sdk = serverSdk(server);
    const watcher = await RawClient.connect(server);
    t.after(() => watcher.close());
    await rawSignedIn(watcher, sdk, { id: 'w', watchlist: ['big', 'marker'] });
    await watcher.next(isWatchlist);

    // signin_success echoes user_data: 3 KB of user_info cannot fit a 2 KB queue.
    const big = await RawClient.connect(server);
    t.after(() => big.close());
    await rawSignIn(big, sdk, { id: 'big', user_info: { bio: 'x'.repeat(3000) } });
    assert.equal(await big.closed, 4100);

    const marker = await RawClient.connect(server);
    t.after(() => marker.close());
    await rawSignedIn(marker, sdk, { id: 'marker' });
    // Had the closed connection been signed in anyway, "big" would be online (for good) first.
    const [, next] = await received(watcher, isWatchlist, 2);
    assert.deepEqual(dataOf(next), { events: [{ name: 'online', user_ids: ['marker'] }] });
  });
});
