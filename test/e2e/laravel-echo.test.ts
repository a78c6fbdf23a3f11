import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Echo, { type EchoOptions } from 'laravel-echo';
import type { Switchboard } from '../../src/index.js';
import { loopbackOptions, PusherJs, serverSdk, type PresenceUser } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';

/**
 * Laravel Echo (pusher broadcaster) in Node, as a Laravel front-end would configure it for a
 * self-hosted Pusher server. Channel auth is signed by the official SDK, as Laravel's
 * /broadcasting/auth endpoint does. Echo needs no `window`: it takes the Pusher class as an option.
 */
type EchoClient = Echo<'pusher'>;
type Member = { id: number; name: string };
/**
 * Echo's typings read pusher-js's default export through NodeNext's CJS interop, which types it
 * as the module namespace; at run time Echo only calls `new Pusher(key, options)` on the class.
 */
type EchoPusherClass = NonNullable<EchoOptions<'pusher'>['Pusher']>;

/** Resolves once `register` has called its callback; resolves with the callback's argument. */
function once<T>(register: (cb: (value: T) => void) => unknown): Promise<T> {
  return new Promise((resolve) => {
    register(resolve);
  });
}

describe('Laravel Echo (pusher broadcaster)', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  function echo(t: { after: (fn: () => void) => void }, presence?: PresenceUser): EchoClient {
    const sdk = serverSdk(server);
    const client = new Echo({
      broadcaster: 'pusher',
      key: APP.key,
      ...loopbackOptions(server),
      Pusher: PusherJs as unknown as EchoPusherClass,
      channelAuthorization: {
        endpoint: '/broadcasting/auth',
        transport: 'ajax',
        customHandler: (params, callback) => {
          const data = params.channelName.startsWith('presence-') ? presence : undefined;
          callback(null, sdk.authorizeChannel(params.socketId, params.channelName, data));
        },
      },
    });
    t.after(() => client.disconnect());
    return client;
  }

  it('listens on a public channel for an event triggered through the SDK (leading dot: no namespace)', async (t) => {
    const client = echo(t);
    const channel = client.channel('orders');
    await once((cb) => channel.subscribed(() => cb(undefined)));
    const got = once<unknown>((cb) => channel.listen('.OrderShipped', cb));
    await serverSdk(server).trigger('orders', 'OrderShipped', { id: 42 });
    assert.deepEqual(await got, { id: 42 });
  });

  it('maps a namespaced Laravel event name (App\\Events\\X) to listen("X")', async (t) => {
    const client = echo(t);
    const channel = client.channel('invoices');
    await once((cb) => channel.subscribed(() => cb(undefined)));
    const got = once<unknown>((cb) => channel.listen('InvoicePaid', cb));
    await serverSdk(server).trigger('invoices', 'App\\Events\\InvoicePaid', { invoice: 9 });
    assert.deepEqual(await got, { invoice: 9 });
  });

  it('subscribes to a private channel through Echo.private() and receives events', async (t) => {
    const client = echo(t);
    const channel = client.private('chat');
    await once((cb) => channel.subscribed(() => cb(undefined)));
    // Echo's connector is typed through the same interop (see EchoPusherClass): it holds a pusher-js client.
    const pusher = (client.connector as unknown as { pusher: InstanceType<typeof PusherJs> }).pusher;
    assert.equal(pusher.channel('private-chat').subscribed, true);
    const got = once<unknown>((cb) => channel.listen('.MessageSent', cb));
    await serverSdk(server).trigger('private-chat', 'MessageSent', { text: 'hi' });
    assert.deepEqual(await got, { text: 'hi' });
  });

  it("skips the sender's socket for toOthers() broadcasts (socket_id from Echo.socketId())", async (t) => {
    const sender = echo(t);
    const other = echo(t);
    const [sent, seen] = [sender.private('toothers'), other.private('toothers')];
    await Promise.all([once((cb) => sent.subscribed(() => cb(undefined))), once((cb) => seen.subscribed(() => cb(undefined)))]);
    const socketId = sender.socketId();
    assert.match(socketId ?? '', /^\d+\.\d+$/);

    const echoed: unknown[] = [];
    sent.listen('.Updated', (data: unknown) => echoed.push(data));
    const got = once<unknown>((cb) => seen.listen('.Updated', cb));
    await serverSdk(server).trigger('private-toothers', 'Updated', { v: 1 }, { socket_id: socketId as string });
    assert.deepEqual(await got, { v: 1 });
    // An event to everyone, sent later, reaches the sender after any copy of the first would have.
    const later = once<unknown>((cb) => sent.listen('.Later', cb));
    await serverSdk(server).trigger('private-toothers', 'Later', { v: 2 });
    assert.deepEqual(await later, { v: 2 });
    assert.deepEqual(echoed, []);
  });

  it('reports presence members through join().here / joining / leaving', async (t) => {
    const ann: Member = { id: 1, name: 'Ann' };
    const ben: Member = { id: 2, name: 'Ben' };
    const first = echo(t, { user_id: '1', user_info: ann });
    const second = echo(t, { user_id: '2', user_info: ben });

    const firstRoom = first.join('room');
    const firstHere = once<Member[]>((cb) => firstRoom.here(cb));
    assert.deepEqual(await firstHere, [ann]);

    const joined = once<Member>((cb) => firstRoom.joining(cb));
    const secondHere = once<Member[]>((cb) => second.join('room').here(cb));
    const here = await secondHere;
    assert.deepEqual([...here].sort((a, b) => a.id - b.id), [ann, ben]);
    assert.deepEqual(await joined, ben);

    const left = once<Member>((cb) => firstRoom.leaving(cb));
    second.leave('room');
    assert.deepEqual(await left, ben);
  });

  it('delivers whisper() to listenForWhisper() on a private channel, not back to the whisperer', async (t) => {
    const alice = echo(t);
    const bob = echo(t);
    const [a, b] = [alice.private('typing'), bob.private('typing')];
    await Promise.all([once((cb) => a.subscribed(() => cb(undefined))), once((cb) => b.subscribed(() => cb(undefined)))]);

    const echoed: unknown[] = [];
    a.listenForWhisper('typing', (data: unknown) => echoed.push(data));
    const got = once<unknown>((cb) => b.listenForWhisper('typing', cb));
    a.whisper('typing', { name: 'Alice' });
    assert.deepEqual(await got, { name: 'Alice' });

    const later = once<unknown>((cb) => a.listen('.Done', cb));
    await serverSdk(server).trigger('private-typing', 'Done', {});
    await later;
    assert.deepEqual(echoed, []);
  });

  it('delivers whisper() on a presence channel', async (t) => {
    const alice = echo(t, { user_id: '1', user_info: { id: 1, name: 'Alice' } });
    const bob = echo(t, { user_id: '2', user_info: { id: 2, name: 'Bob' } });
    const aliceRoom = alice.join('whispers');
    await once((cb) => aliceRoom.here(cb));
    const bobRoom = bob.join('whispers');
    await once((cb) => bobRoom.here(cb));
    const got = once<unknown>((cb) => aliceRoom.listenForWhisper('typing', cb));
    bobRoom.whisper('typing', { name: 'Bob' });
    assert.deepEqual(await got, { name: 'Bob' });
  });
});
