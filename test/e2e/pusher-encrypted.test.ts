import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs, type RawClient } from '../helpers/clients.js';
import { channelAuth, decoded, rawClient, subscribeRaw, subscribeSigned } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';

/*
 * End-to-end encryption: the server SDK encrypts with a key derived from the master key and
 * the channel name, pusher-js decrypts with the shared_secret from its channel authorization,
 * and the server only relays {nonce, ciphertext}.
 *
 * In Node, `pusher-js` resolves to dist/node/pusher.js, whose default export is the
 * PusherWithEncryption class (it sets options.nacl); `pusher-js/with-encryption` is the web
 * bundle and throws `self is not defined` outside a browser, so the Node build is the
 * with-encryption build used here.
 */

const SECRET_TEXT = 'the-plaintext-the-server-must-never-see';

describe('private-encrypted- channels', () => {
  let server: Switchboard;
  let sdk: Pusher;
  before(async () => {
    server = await startServer();
    sdk = serverSdk(server, APP, { encryptionMasterKeyBase64: randomBytes(32).toString('base64') });
  });
  after(() => server.close());

  const pusherJsClients: PusherJs[] = [];
  const rawClients: RawClient[] = [];
  after(() => {
    pusherJsClients.forEach((c) => c.disconnect());
    rawClients.forEach((c) => c.close());
  });
  const encryptingClient = async (): Promise<PusherJs> => {
    const client = pusherClient(server, { sdk });
    pusherJsClients.push(client);
    await connected(client);
    return client;
  };
  const raw = async (): Promise<RawClient> => {
    const client = await rawClient(server);
    rawClients.push(client);
    return client;
  };

  it('pusher-js decrypts what the SDK encrypted and receives the plaintext', async () => {
    const channel = 'private-encrypted-orders';
    const client = await encryptingClient();
    await subscribed(client, channel);
    const got = new Promise((resolve) => client.channel(channel).bind('created', resolve));
    await sdk.trigger(channel, 'created', { text: SECRET_TEXT, n: 7 });
    assert.deepEqual(await got, { text: SECRET_TEXT, n: 7 });
  });

  it('a raw subscriber sees only {nonce, ciphertext}, never the plaintext', async () => {
    const channel = 'private-encrypted-raw';
    const client = await raw();
    await subscribeSigned(client, channel); // the server needs no shared_secret to authorize
    const frameText = new Promise<string>((resolve) =>
      client.ws.on('message', (data) => {
        if (String(data).includes('"created"')) resolve(String(data));
      }),
    );
    await sdk.trigger(channel, 'created', { text: SECRET_TEXT });
    const text = await frameText;
    assert.ok(!text.includes(SECRET_TEXT), 'plaintext reached the wire');
    const frame = await client.event('created', channel);
    const payload = decoded(frame) as Record<string, string>;
    assert.deepEqual(Object.keys(payload).sort(), ['ciphertext', 'nonce']);
    assert.equal(Buffer.from(payload.nonce, 'base64').length, 24);
    assert.ok(!Buffer.from(payload.ciphertext, 'base64').toString('latin1').includes(SECRET_TEXT));
  });

  it('refuses a subscription without a valid signature like any private channel', async () => {
    const client = await raw();
    const socketId = await client.socketId();
    const result = await subscribeRaw(client, 'private-encrypted-locked', { auth: channelAuth(socketId, 'private-encrypted-other') });
    assert.deepEqual(result, {
      event: 'pusher:subscription_error',
      channel: 'private-encrypted-locked',
      data: { type: 'AuthError', error: 'Invalid signature', status: 401 },
    });
  });

  it('refuses client events on an encrypted channel (the server could not check them)', async () => {
    const channel = 'private-encrypted-chat';
    const sender = await raw();
    const other = await raw();
    await subscribeSigned(sender, channel);
    await subscribeSigned(other, channel);
    sender.send({ event: 'client-typing', channel, data: { text: 'hi' } });
    const error = await sender.event('pusher:error');
    assert.deepEqual(decoded(error), { code: 4300, message: 'Client events are only allowed on private and presence channels' });
    const marker = other.event('after', channel);
    await sdk.trigger(channel, 'after', {});
    await marker;
    assert.equal(other.messages.filter((m) => m.event === 'client-typing').length, 0);
  });

  it('refuses over REST an event that names an encrypted channel with others', async () => {
    const event = { name: 'e', data: '{}', channels: ['private-encrypted-a', 'public-b'] };
    // The SDK refuses this itself, so post it raw. post() JSON-encodes `body` although its typings say string.
    await assert.rejects(sdk.post({ path: '/events', body: event as unknown as string }), (err: { status?: number; body?: string }) => {
      assert.equal(err.status, 400);
      assert.deepEqual(JSON.parse(err.body ?? ''), { error: 'an encrypted channel must be the only channel of its event' });
      return true;
    });
  });

  it('private-encrypted-cache-: a late pusher-js subscriber decrypts the cached ciphertext', async () => {
    const channel = 'private-encrypted-cache-price';
    await sdk.trigger(channel, 'price', { text: SECRET_TEXT, eur: 12 });
    const client = await encryptingClient();
    const ch = client.subscribe(channel);
    const got = new Promise((resolve) => ch.bind('price', resolve));
    const miss = new Promise((resolve) => ch.bind('pusher:cache_miss', resolve));
    const first = await Promise.race([got, miss.then(() => 'cache_miss')]);
    assert.deepEqual(first, { text: SECRET_TEXT, eur: 12 });
  });
});
