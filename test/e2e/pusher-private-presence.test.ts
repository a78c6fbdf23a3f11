import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type Pusher from 'pusher';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs, type RawClient } from '../helpers/clients.js';
import { channelAuth, decoded, flush, rawClient, restGet, subscribeRaw, subscribeSigned, type Frame } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

const LIMITS = { id: 'limits-id', key: 'limits-key', secret: 'limits-secret', maxPresenceMembers: 2, maxPresenceUserInfoBytes: 64, maxUserIdLength: 8 };

/** The shape pusher-js hands to pusher:subscription_succeeded on a presence channel. */
interface Members {
  count: number;
  me: { id: string; info: unknown };
  get(id: string): { id: string; info: unknown } | null;
  each(cb: (member: { id: string; info: unknown }) => void): void;
}

function memberIds(members: Members): string[] {
  const ids: string[] = [];
  members.each((m) => ids.push(m.id));
  return ids.sort();
}

const presenceData = (userId: unknown, userInfo?: unknown): string =>
  JSON.stringify(userInfo === undefined ? { user_id: userId } : { user_id: userId, user_info: userInfo });

/** A subscription_error frame's exact payload. */
function authError(channel: string, error = 'Invalid signature'): Frame {
  return { event: 'pusher:subscription_error', channel, data: { type: 'AuthError', error, status: 401 } };
}

describe('private and presence channels', () => {
  let server: Switchboard;
  let sdk: Pusher;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true, channelPasswords: { vault: 'open-sesame' } }, LIMITS] });
    sdk = serverSdk(server);
  });
  after(() => server.close());

  const clients: Array<RawClient | PusherJs> = [];
  const raw = async (key: string = APP.key): Promise<RawClient> => {
    const c = await rawClient(server, key);
    clients.push(c);
    return c;
  };
  const pusherJs = (presence?: { user_id: string; user_info?: Record<string, unknown> }): PusherJs => {
    const c = pusherClient(server, presence ? { presence } : {});
    clients.push(c);
    return c;
  };
  after(() => {
    for (const c of clients) {
      if ('disconnect' in c) c.disconnect();
      else c.close();
    }
  });

  describe('private channels', () => {
    it('pusher-js subscribes with a signature from the server SDK and receives events', async () => {
      const client = pusherJs();
      await connected(client);
      assert.deepEqual(await subscribed(client, 'private-orders'), {});
      const got = new Promise((resolve) => client.channel('private-orders').bind('paid', resolve));
      await sdk.trigger('private-orders', 'paid', { id: 1 });
      assert.deepEqual(await got, { id: 1 });
    });

    it('refuses a password-protected channel (native clients only) with AuthError 401', async () => {
      const client = await raw();
      await client.socketId();
      assert.deepEqual(await subscribeRaw(client, 'vault'), {
        event: 'pusher:subscription_error',
        channel: 'vault',
        data: { type: 'AuthError', error: 'This channel needs a password (native protocol only)', status: 401 },
      });
      assert.deepEqual(await restGet(sdk, '/channels/vault'), { occupied: false });
    });

    const refusals: Array<{ name: string; auth: (socketId: string, channel: string) => Record<string, unknown> }> = [
      { name: 'a bad signature', auth: () => ({ auth: `${APP.key}:${'0'.repeat(64)}` }) },
      { name: 'no auth', auth: () => ({}) },
      { name: 'auth that is not a string', auth: (s, c) => ({ auth: { value: channelAuth(s, c) } }) },
      { name: 'a right signature under another key prefix', auth: (s, c) => ({ auth: `other-key:${channelAuth(s, c).split(':')[1]}` }) },
      { name: 'a signature made for another socket id', auth: (_s, c) => ({ auth: channelAuth('1.2', c) }) },
      { name: 'a signature made for another channel', auth: (s) => ({ auth: channelAuth(s, 'private-other') }) },
    ];
    refusals.forEach((r, i) => {
      it(`refuses ${r.name} with AuthError 401 and does not subscribe`, async () => {
        const channel = `private-refused-${i}`;
        const client = await raw();
        const socketId = await client.socketId();
        assert.deepEqual(await subscribeRaw(client, channel, r.auth(socketId, channel)), authError(channel));
        assert.deepEqual(await restGet(sdk, `/channels/${channel}`), { occupied: false });
        // An event to the channel must not arrive: a later event on a subscribed channel proves it was not queued.
        await subscribeRaw(client, `public-${i}`);
        await sdk.trigger(channel, 'secret', { leak: true });
        await flush(client, sdk, `public-${i}`, 'marker');
        assert.equal(client.messages.filter((m) => m.channel === channel && m.event === 'secret').length, 0);
      });
    });
  });

  describe('presence channels', () => {
    it('pusher-js gets the members (ids, info, count, me) on subscription_succeeded', async () => {
      const ann = pusherJs({ user_id: 'ann', user_info: { name: 'Ann' } });
      const bob = pusherJs({ user_id: 'bob', user_info: { name: 'Bob' } });
      const first = (await subscribed(ann, 'presence-members')) as Members;
      assert.equal(first.count, 1);
      assert.deepEqual(memberIds(first), ['ann']);
      const members = (await subscribed(bob, 'presence-members')) as Members;
      assert.equal(members.count, 2);
      assert.deepEqual(memberIds(members), ['ann', 'bob']);
      assert.deepEqual(members.me, { id: 'bob', info: { name: 'Bob' } });
      assert.deepEqual(members.get('ann'), { id: 'ann', info: { name: 'Ann' } });
    });

    it('sends subscription_succeeded data as the JSON string {presence:{ids,hash,count}}', async () => {
      const a = await raw();
      const b = await raw();
      await subscribeSigned(a, 'presence-wire', presenceData('a', { name: 'A' }));
      const frame = await subscribeSigned(b, 'presence-wire', presenceData('b', { name: 'B' }));
      assert.equal(typeof frame.data, 'string');
      const { presence } = decoded(frame) as { presence: { ids: string[]; hash: Record<string, unknown>; count: number } };
      assert.deepEqual({ ...presence, ids: [...presence.ids].sort() }, { ids: ['a', 'b'], hash: { a: { name: 'A' }, b: { name: 'B' } }, count: 2 });
    });

    it('announces member_added to the other members only, not to the joiner', async () => {
      const a = await raw();
      const b = await raw();
      await subscribeSigned(a, 'presence-added', presenceData('a'));
      await subscribeSigned(b, 'presence-added', presenceData('b', { role: 'x' }));
      const added = await a.event('pusher_internal:member_added', 'presence-added');
      assert.equal(typeof added.data, 'string');
      assert.deepEqual(decoded(added), { user_id: 'b', user_info: { role: 'x' } });
      await flush(b, sdk, 'presence-added', 'marker');
      assert.equal(b.messages.filter((m) => m.event === 'pusher_internal:member_added').length, 0);
    });

    it('counts a user on two tabs as one member: no member_added/removed for the second tab, member_removed for the last', async () => {
      const channel = 'presence-tabs';
      const observer = await raw();
      await subscribeSigned(observer, channel, presenceData('watcher'));
      const tab1 = pusherJs({ user_id: 'bob', user_info: { name: 'Bob' } });
      const tab2 = pusherJs({ user_id: 'bob', user_info: { name: 'Bob' } });
      await subscribed(tab1, channel);
      const seenByTab2 = (await subscribed(tab2, channel)) as Members;
      assert.equal(seenByTab2.count, 2, 'bob on two sockets is one member');
      assert.deepEqual(memberIds(seenByTab2), ['bob', 'watcher']);
      await flush(observer, sdk, channel, 'after-second-tab');
      const events = (name: string): Frame[] => observer.messages.filter((m) => m.event === name && m.channel === channel);
      assert.equal(events('pusher_internal:member_added').length, 1);

      tab2.disconnect();
      await until(() => server.hub.channelInfo(APP.id, channel).subscriptionCount === 2, 'the server to drop the second tab');
      await flush(observer, sdk, channel, 'after-closing-one-tab');
      assert.equal(events('pusher_internal:member_removed').length, 0);
      const users = (await restGet(sdk, `/channels/${channel}/users`)) as { users: Array<{ id: string }> };
      assert.deepEqual(users.users.map((u) => u.id).sort(), ['bob', 'watcher']);

      tab1.disconnect();
      const removed = await observer.event('pusher_internal:member_removed', channel);
      assert.deepEqual(decoded(removed), { user_id: 'bob' });
    });

    it('accepts a numeric user_id and reports it as a string', async () => {
      const a = await raw();
      const n = await raw();
      await subscribeSigned(a, 'presence-numeric', presenceData('a'));
      const frame = await subscribeSigned(n, 'presence-numeric', presenceData(42, { n: 1 }));
      const { presence } = decoded(frame) as { presence: { ids: string[]; hash: Record<string, unknown> } };
      assert.deepEqual([...presence.ids].sort(), ['42', 'a']);
      assert.deepEqual(presence.hash['42'], { n: 1 });
      assert.deepEqual(decoded(await a.event('pusher_internal:member_added', 'presence-numeric')), { user_id: '42', user_info: { n: 1 } });
    });

    it('removes members on disconnect and on unsubscribe, as REST /users shows', async () => {
      const channel = 'presence-leave';
      const a = await raw();
      const b = await raw();
      const c = await raw();
      await subscribeSigned(a, channel, presenceData('a'));
      await subscribeSigned(b, channel, presenceData('b'));
      await subscribeSigned(c, channel, presenceData('c'));
      const users = async (): Promise<string[]> => ((await restGet(sdk, `/channels/${channel}/users`)) as { users: Array<{ id: string }> }).users.map((u) => u.id).sort();
      assert.deepEqual(await users(), ['a', 'b', 'c']);

      b.close();
      assert.deepEqual(decoded(await a.event('pusher_internal:member_removed', channel)), { user_id: 'b' });
      assert.deepEqual(await users(), ['a', 'c']);

      c.send({ event: 'pusher:unsubscribe', data: { channel } });
      await a.next((m) => m.event === 'pusher_internal:member_removed' && (decoded(m) as { user_id: string }).user_id === 'c');
      assert.deepEqual(await users(), ['a']);
      assert.deepEqual(await restGet(sdk, `/channels/${channel}`, { info: 'user_count' }), { occupied: true, user_count: 1 });
    });

    describe('refusals', () => {
      it('presence without channel_data → AuthError 401', async () => {
        const client = await raw();
        const socketId = await client.socketId();
        const result = await subscribeRaw(client, 'presence-nodata', { auth: channelAuth(socketId, 'presence-nodata') });
        assert.deepEqual(result, authError('presence-nodata', 'Presence channels need channel_data'));
        assert.deepEqual(await restGet(sdk, '/channels/presence-nodata/users'), { users: [] });
      });

      it('channel_data other than the signed one → AuthError 401', async () => {
        const client = await raw();
        const socketId = await client.socketId();
        const auth = channelAuth(socketId, 'presence-tamper', presenceData('me'));
        const result = await subscribeRaw(client, 'presence-tamper', { auth, channel_data: presenceData('admin') });
        assert.deepEqual(result, authError('presence-tamper'));
      });

      const invalid: Array<{ name: string; channelData: string; error: string }> = [
        { name: 'channel_data that is not JSON', channelData: '{user_id:1', error: 'channel_data must be JSON' },
        { name: 'channel_data without user_id', channelData: '{"user_info":{}}', error: 'channel_data.user_id must be a non-empty string' },
        { name: 'an empty user_id', channelData: '{"user_id":""}', error: 'channel_data.user_id must be a non-empty string' },
      ];
      invalid.forEach((c, i) => {
        it(`${c.name} (signed) → InvalidChannelData 400`, async () => {
          const channel = `presence-invalid-${i}`;
          const client = await raw();
          const auth = channelAuth(await client.socketId(), channel, c.channelData);
          const result = await subscribeRaw(client, channel, { auth, channel_data: c.channelData });
          assert.deepEqual(result, { event: 'pusher:subscription_error', channel, data: { type: 'InvalidChannelData', error: c.error, status: 400 } });
        });
      });
    });

    describe('limits (app: 2 members, user_info ≤ 64 bytes, user_id ≤ 8 chars)', () => {
      const subscribeLimited = async (channel: string, channelData: string): Promise<{ client: RawClient; result: Frame }> => {
        const client = await raw(LIMITS.key);
        const auth = channelAuth(await client.socketId(), channel, channelData, LIMITS);
        return { client, result: await subscribeRaw(client, channel, { auth, channel_data: channelData }) };
      };
      const limitsSdk = (): Pusher => serverSdk(server, LIMITS);

      it('refuses a third distinct user with LimitReached, tells nobody, and still lets a member open another tab', async () => {
        const channel = 'presence-full';
        const first = await subscribeLimited(channel, presenceData('u1'));
        assert.equal(first.result.event, 'pusher_internal:subscription_succeeded');
        assert.equal((await subscribeLimited(channel, presenceData('u2'))).result.event, 'pusher_internal:subscription_succeeded');
        await first.client.event('pusher_internal:member_added', channel);

        const third = await subscribeLimited(channel, presenceData('u3'));
        assert.deepEqual(third.result, {
          event: 'pusher:subscription_error',
          channel,
          data: { type: 'LimitReached', error: 'The presence channel is full (2 members)', status: 403 },
        });
        const secondTab = await subscribeLimited(channel, presenceData('u1'));
        assert.equal(secondTab.result.event, 'pusher_internal:subscription_succeeded');
        await flush(first.client, limitsSdk(), channel, 'marker');
        assert.equal(first.client.messages.filter((m) => m.event === 'pusher_internal:member_added').length, 1, 'only u2 was announced');
        const users = (await restGet(limitsSdk(), `/channels/${channel}/users`)) as { users: Array<{ id: string }> };
        assert.deepEqual(users.users.map((u) => u.id).sort(), ['u1', 'u2']);
      });

      it('refuses user_info larger than maxPresenceUserInfoBytes and accepts one at the limit', async () => {
        const infoOf = (bytes: number): { s: string } => ({ s: 'x'.repeat(bytes - JSON.stringify({ s: '' }).length) });
        assert.equal(JSON.stringify(infoOf(64)).length, 64);
        const over = await subscribeLimited('presence-info', presenceData('big', infoOf(65)));
        assert.deepEqual(over.result, {
          event: 'pusher:subscription_error',
          channel: 'presence-info',
          data: { type: 'InvalidChannelData', error: 'channel_data.user_info is larger than 64 bytes', status: 400 },
        });
        const at = await subscribeLimited('presence-info', presenceData('fits', infoOf(64)));
        assert.equal(at.result.event, 'pusher_internal:subscription_succeeded');
      });

      it('refuses a user_id longer than maxUserIdLength and accepts one at the limit', async () => {
        const over = await subscribeLimited('presence-id', presenceData('123456789'));
        assert.deepEqual(over.result, {
          event: 'pusher:subscription_error',
          channel: 'presence-id',
          data: { type: 'InvalidChannelData', error: 'channel_data.user_id is longer than 8 characters', status: 400 },
        });
        const at = await subscribeLimited('presence-id', presenceData('12345678'));
        assert.equal(at.result.event, 'pusher_internal:subscription_succeeded');
      });
    });
  });
});
