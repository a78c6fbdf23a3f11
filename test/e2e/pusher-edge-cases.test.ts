import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { type RawClient, serverSdk } from '../helpers/clients.js';
import { api } from '../helpers/native.js';
import { channelAuth, decoded, flush, rawClient, subscribeRaw, subscribeSigned } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { signedRequest } from '../helpers/signed-request.js';
import { rawSignedIn, rawSubscribed } from '../helpers/users.js';

const TOKEN = 'edge-token-0123456789';

/** Where Pusher's rules are easy to get subtly wrong: ids, duplicates, reserved names, exclusions. */
describe('Pusher protocol edge cases', () => {
  let server: Switchboard;
  const clients: RawClient[] = [];
  const client = async (): Promise<RawClient> => {
    const c = await rawClient(server);
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true, enableSubscriptionCount: true, apiToken: TOKEN }] });
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  it('refuses a numeric presence user_id too large to keep exactly (send 64-bit ids as strings)', async () => {
    const c = await client();
    const channel = 'presence-big-ids';
    const data = '{"user_id":1234567890123456789}'; // as PHP encodes a 64-bit integer
    const result = await subscribeRaw(c, channel, { auth: channelAuth(await c.socketId(), channel, data), channel_data: data });
    assert.equal(result.event, 'pusher:subscription_error');
    assert.deepEqual(result.data, {
      type: 'InvalidChannelData',
      error: 'channel_data.user_id must be a string or an integer below 2^53 (send larger ids as strings)',
      status: 400,
    });
    const asString = JSON.stringify({ user_id: '1234567890123456789' });
    const ok = await subscribeSigned(await client(), channel, asString);
    assert.deepEqual((decoded(ok) as { presence: { ids: string[] } }).presence.ids, ['1234567890123456789']);
  });

  it('accepts a numeric presence user_id and lists and announces it as a string', async () => {
    const channel = 'presence-numeric-ids';
    const first = await client();
    await subscribeSigned(first, channel, '{"user_id":"a"}');
    const ok = await subscribeSigned(await client(), channel, '{"user_id":42}');
    assert.deepEqual((decoded(ok) as { presence: { ids: string[] } }).presence.ids.sort(), ['42', 'a']);
    const added = await first.event('pusher_internal:member_added', channel);
    assert.deepEqual(decoded(added), { user_id: '42', user_info: null });
  });

  it('delivers an event once to a channel named twice in one trigger', async () => {
    const c = await client();
    await subscribeRaw(c, 'twice');
    const reply = await signedRequest(server, { path: '/events', body: JSON.stringify({ name: 'once', channels: ['twice', 'twice'], data: '{}' }) });
    assert.equal(reply.status, 200);
    await flush(c, serverSdk(server), 'twice', 'marker');
    assert.equal(c.messages.filter((m) => m.event === 'once').length, 1);
  });

  it('refuses pusher: and pusher_internal: event names from the REST API and the native API', async () => {
    for (const name of ['pusher:error', 'pusher_internal:member_removed']) {
      const rest = await signedRequest(server, { path: '/events', body: JSON.stringify({ name, channel: 'presence-x', data: '{"user_id":"alice"}' }) });
      assert.equal(rest.status, 400, name);
      assert.deepEqual(rest.json, { error: 'event names starting with pusher: or pusher_internal: are reserved' });
      for (const path of ['/broadcast', '/send']) {
        const query: Record<string, string> = path === '/broadcast' ? { channel: 'x', data: 'y', event: name } : { user: 'alice', type: 'text', event: name };
        const reply = await api(server, 'POST', path, { token: TOKEN, query });
        assert.equal(reply.status, 400, `${path} ${name}`);
        assert.equal((reply.json as { errorCode: string }).errorCode, 'INVALID_EVENT');
      }
    }
  });

  it("skips the socket_id's connection for events to a user channel too", async () => {
    const sdk = serverSdk(server);
    const [tab1, tab2] = [await client(), await client()];
    await rawSignedIn(tab1, sdk, { id: 'skipper' });
    await rawSignedIn(tab2, sdk, { id: 'skipper' });
    await rawSubscribed(tab1, '#server-to-user-skipper');
    await rawSubscribed(tab2, '#server-to-user-skipper');
    const body = JSON.stringify({ name: 'note', channel: '#server-to-user-skipper', data: '{}', socket_id: await tab1.socketId() });
    assert.equal((await signedRequest(server, { path: '/events', body })).status, 200);
    await tab2.event('note', '#server-to-user-skipper');
    await sdk.sendToUser('skipper', 'after', {});
    await tab1.event('after', '#server-to-user-skipper'); // later than 'note' would have come
    assert.equal(tab1.messages.filter((m) => m.event === 'note').length, 0);
  });

  it('reports a user named twice in a watchlist once, and counts it once', async () => {
    const c = await client();
    await rawSignedIn(c, serverSdk(server), { id: 'watcher', watchlist: ['nobody', 'nobody', 'someone'] });
    const watch = await c.next((m) => m.event === 'pusher_internal:watchlist_events');
    assert.deepEqual(decoded(watch), { events: [{ name: 'offline', user_ids: ['nobody', 'someone'] }] });
  });

  it("sends no subscription_count on a user's own channel", async () => {
    const sdk = serverSdk(server);
    const c = await client();
    await rawSignedIn(c, sdk, { id: 'counted' });
    await rawSubscribed(c, '#server-to-user-counted');
    await rawSubscribed(c, 'counted-room'); // a public channel does get one
    await c.next((m) => m.event === 'pusher_internal:subscription_count' && m.channel === 'counted-room');
    assert.equal(c.messages.filter((m) => m.event === 'pusher_internal:subscription_count' && m.channel === '#server-to-user-counted').length, 0);
  });
});
