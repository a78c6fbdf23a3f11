import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { RawClient, connected, pusherClient, serverSdk, subscribed } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';
import { dataOf, errorOf, markerName, rawSubscribed, received, type RawMessage } from '../helpers/users.js';

const isError = (m: RawMessage): boolean => m.event === 'pusher:error';

/**
 * Sends `frame` from `sender` and expects exactly one new pusher:error with `code` and
 * `message`; then proves `receiver` got nothing named `frame.event` before a REST marker.
 */
async function expectRefused(
  sdk: Pusher,
  sender: RawClient,
  receiver: RawClient,
  channel: string,
  frame: { event: string; channel?: string; data?: unknown },
  code: number,
  message: string,
): Promise<void> {
  const errorsBefore = sender.messages.filter(isError).length;
  sender.send(frame);
  const errors = await received(sender, isError, errorsBefore + 1);
  assert.deepEqual(errorOf(errors[errorsBefore]), { code, message });
  const marker = markerName();
  await sdk.trigger(channel, marker, {});
  await receiver.event(marker, channel);
  assert.deepEqual(
    receiver.messages.filter((m) => m.event === frame.event),
    [],
    `${frame.event} must not be delivered`,
  );
  assert.equal(sender.closeCode, undefined, 'the sender stays connected');
}

describe('client events (Pusher protocol)', () => {
  let server: Switchboard;
  let sdk: Pusher;
  before(async () => {
    server = await startServer();
    sdk = serverSdk(server);
  });
  after(() => server.close());

  async function pair(channel: string, presence = false, channelSdk: Pusher = sdk): Promise<[RawClient, RawClient]> {
    const sender = await RawClient.connect(server);
    const receiver = await RawClient.connect(server);
    const signed = channel.startsWith('private-') || channel.startsWith('presence-');
    await rawSubscribed(receiver, channel, signed ? channelSdk : undefined, presence ? { user_id: 'receiver' } : undefined);
    await rawSubscribed(sender, channel, signed ? channelSdk : undefined, presence ? { user_id: 'sender' } : undefined);
    return [sender, receiver];
  }

  it('delivers a client event on a private channel to the other subscriber and not back to the sender', async (t) => {
    const alice = pusherClient(server);
    const bob = pusherClient(server);
    t.after(() => [alice, bob].forEach((c) => c.disconnect()));
    await Promise.all([connected(alice), connected(bob)]);
    await Promise.all([subscribed(alice, 'private-chat'), subscribed(bob, 'private-chat')]);

    const echoed: unknown[] = [];
    alice.channel('private-chat').bind('client-typing', (data: unknown) => echoed.push(data));
    const bobGot = new Promise((resolve) => bob.channel('private-chat').bind('client-typing', resolve));
    assert.equal(alice.channel('private-chat').trigger('client-typing', { who: 'alice' }), true);
    assert.deepEqual(await bobGot, { who: 'alice' });

    // A REST event published after the client event reaches Alice after any echo would have.
    const later = new Promise((resolve) => alice.channel('private-chat').bind('later', resolve));
    await sdk.trigger('private-chat', 'later', { n: 1 });
    assert.deepEqual(await later, { n: 1 });
    assert.deepEqual(echoed, []);
  });

  it("adds the sender's user_id on presence channels (pusher-js passes it as metadata)", async (t) => {
    const alice = pusherClient(server, { presence: { user_id: 'alice', user_info: { name: 'Alice' } } });
    const bob = pusherClient(server, { presence: { user_id: 'bob' } });
    t.after(() => [alice, bob].forEach((c) => c.disconnect()));
    await Promise.all([connected(alice), connected(bob)]);
    await Promise.all([subscribed(alice, 'presence-room'), subscribed(bob, 'presence-room')]);

    const bobGot = new Promise<[unknown, unknown]>((resolve) =>
      bob.channel('presence-room').bind('client-typing', (data: unknown, metadata: unknown) => resolve([data, metadata])),
    );
    alice.channel('presence-room').trigger('client-typing', { typing: true });
    assert.deepEqual(await bobGot, [{ typing: true }, { user_id: 'alice' }]);
  });

  it('puts user_id on the raw presence frame and none on private frames', async (t) => {
    const [sender, receiver] = await pair('presence-raw', true);
    const [privSender, privReceiver] = await pair('private-raw');
    t.after(() => [sender, receiver, privSender, privReceiver].forEach((c) => c.close()));
    sender.send({ event: 'client-ping', channel: 'presence-raw', data: { a: 1 } });
    privSender.send({ event: 'client-ping', channel: 'private-raw', data: { a: 2 } });
    assert.deepEqual(await receiver.event('client-ping', 'presence-raw'), { event: 'client-ping', channel: 'presence-raw', data: { a: 1 }, user_id: 'sender' });
    assert.deepEqual(await privReceiver.event('client-ping', 'private-raw'), { event: 'client-ping', channel: 'private-raw', data: { a: 2 } });
  });

  it('refuses client events on a public channel with 4300', async (t) => {
    const [sender, receiver] = await pair('lobby');
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    await expectRefused(sdk, sender, receiver, 'lobby', { event: 'client-x', channel: 'lobby', data: {} }, 4300, 'Client events are only allowed on private and presence channels');
  });

  it('refuses client events on a channel the sender is not subscribed to with 4300', async (t) => {
    const sender = await RawClient.connect(server);
    const receiver = await RawClient.connect(server);
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    await rawSubscribed(receiver, 'private-notmine', sdk);
    await expectRefused(
      sdk,
      sender,
      receiver,
      'private-notmine',
      { event: 'client-x', channel: 'private-notmine', data: {} },
      4300,
      'Client events need a channel this connection is subscribed to',
    );
  });

  it('refuses pusher: and pusher_internal: events sent by a client with 4300', async (t) => {
    const [sender, receiver] = await pair('presence-fake', true);
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    await expectRefused(sdk, sender, receiver, 'presence-fake', { event: 'pusher:foo', channel: 'presence-fake', data: {} }, 4300, 'Unsupported event: pusher:foo');
    const fake = { user_id: 'ghost', user_info: {} };
    const frame = { event: 'pusher_internal:member_added', channel: 'presence-fake', data: JSON.stringify(fake) };
    const errorsBefore = sender.messages.filter(isError).length;
    sender.send(frame);
    const errors = await received(sender, isError, errorsBefore + 1);
    assert.deepEqual(errorOf(errors[errorsBefore]), { code: 4300, message: 'Unsupported event: pusher_internal:member_added' });
    const marker = markerName();
    await sdk.trigger('presence-fake', marker, {});
    await receiver.event(marker, 'presence-fake');
    // The receiver saw the sender's real join only, never the ghost.
    const added = receiver.messages.filter((m) => m.event === 'pusher_internal:member_added').map((m) => (dataOf(m) as { user_id: string }).user_id);
    assert.deepEqual(added, ['sender']);
  });

  it('refuses client events on private-encrypted- channels with 4300', async (t) => {
    const encSdk = serverSdk(server, APP, { encryptionMasterKeyBase64: Buffer.alloc(32, 7).toString('base64') });
    const [sender, receiver] = await pair('private-encrypted-secret', false, encSdk);
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    await expectRefused(
      encSdk,
      sender,
      receiver,
      'private-encrypted-secret',
      { event: 'client-x', channel: 'private-encrypted-secret', data: {} },
      4300,
      'Client events are only allowed on private and presence channels',
    );
  });

  it('delivers client event data up to maxEventDataBytes and refuses one byte more with 4300', async (t) => {
    const [sender, receiver] = await pair('private-big');
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    // JSON text of a string is the string plus its two quotes.
    const fits = 'x'.repeat(10 * 1024 - 2);
    sender.send({ event: 'client-fits', channel: 'private-big', data: fits });
    assert.equal((await receiver.event('client-fits', 'private-big')).data, fits);
    await expectRefused(
      sdk,
      sender,
      receiver,
      'private-big',
      { event: 'client-big', channel: 'private-big', data: `${fits}x` },
      4300,
      'Client event data is larger than 10240 bytes',
    );
  });

  it('rate-limits client events to clientEventsPerSecond with 4301 and keeps the connection open', async (t) => {
    const [sender, receiver] = await pair('private-burst');
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    const started = Date.now();
    for (let i = 0; i < 15; i += 1) sender.send({ event: 'client-burst', channel: 'private-burst', data: { i } });
    sender.send({ event: 'pusher:ping', data: {} });
    await sender.event('pusher:pong'); // frames are handled in order: all 15 are decided now
    const elapsedMs = Date.now() - started;

    const marker = markerName();
    await sdk.trigger('private-burst', marker, {});
    await receiver.event(marker, 'private-burst');
    const delivered = receiver.messages.filter((m) => m.event === 'client-burst');
    const limited = sender.messages.filter(isError);
    for (const m of limited) assert.deepEqual(errorOf(m), { code: 4301, message: 'Client event rejected: more than 10 per second' });
    assert.ok(limited.length >= 1, 'at least one event is rate-limited');
    assert.equal(delivered.length + limited.length, 15);
    // A full bucket of 10, plus what refilled (10 per second) while the burst was handled.
    assert.ok(delivered.length >= 10 && delivered.length <= 10 + Math.floor(elapsedMs / 100), `delivered ${delivered.length} in ${elapsedMs} ms`);
    assert.deepEqual(
      delivered.slice(0, 10).map((m) => (m.data as { i: number }).i),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    assert.equal(sender.closeCode, undefined);

    // The bucket refills with time (the behaviour under test): one token takes 100 ms.
    await delay(150);
    sender.send({ event: 'client-after', channel: 'private-burst', data: { ok: true } });
    assert.deepEqual((await receiver.event('client-after', 'private-burst')).data, { ok: true });
  });
});

describe('client events on an app that does not enable them', () => {
  let server: Switchboard;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: false }] });
  });
  after(() => server.close());

  it('refuses them with 4300 and delivers nothing', async (t) => {
    const sdk = serverSdk(server);
    const sender = await RawClient.connect(server);
    const receiver = await RawClient.connect(server);
    t.after(() => [sender, receiver].forEach((c) => c.close()));
    await rawSubscribed(receiver, 'private-off', sdk);
    await rawSubscribed(sender, 'private-off', sdk);
    await expectRefused(sdk, sender, receiver, 'private-off', { event: 'client-x', channel: 'private-off', data: {} }, 4300, 'Client events are not enabled for this app');
  });
});
