import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, RawClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { api, closeAll, connectNative, makeJwt, nowSeconds, subscribeNative, type NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';
import { pusherSignedIn, rawSignedIn } from '../helpers/users.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'one-hub-api-token-xyz';
const JWT_SECRET = 'one-hub-jwt-secret-abcdef';

type Member = { id: string; info: unknown };

describe('one hub for the native and the Pusher protocol', () => {
  let server: Switchboard;
  const natives: NativeClient[] = [];
  const pushers: PusherJs[] = [];

  const native = async (path = '/ws?ack=1'): Promise<NativeClient> => {
    const c = await connectNative(server, path);
    natives.push(c);
    return c;
  };
  const nativeAs = async (sub: string, extra = '', claims: Record<string, unknown> = {}): Promise<NativeClient> =>
    native(`/ws?ack=1&jwt=${await makeJwt(JWT_SECRET, { sub, exp: nowSeconds() + 60, ...claims })}${extra}`);
  const pusher = async (opts: Parameters<typeof pusherClient>[1] = {}): Promise<PusherJs> => {
    const client = pusherClient(server, opts);
    pushers.push(client);
    await connected(client);
    return client;
  };
  const nextEvent = (client: PusherJs, channel: string, event: string): Promise<unknown> =>
    new Promise((resolve) => {
      const ch = client.channel(channel);
      const handler = (data: unknown): void => {
        ch.unbind(event, handler);
        resolve(data);
      };
      ch.bind(event, handler);
    });

  before(async () => {
    server = await startServer({ apps: [{ ...APP, enableClientMessages: true, apiToken: TOKEN, jwtSecret: JWT_SECRET, clientPublish: true }] });
  });
  after(async () => {
    await closeAll(natives);
    for (const p of pushers) p.disconnect();
    await server.close();
  });

  it('delivers one /broadcast to a raw native client, an envelope client and a pusher-js client (event "message")', async () => {
    const raw = await native();
    const env = await native('/ws?format=envelope');
    const pj = await pusher();
    await subscribeNative(raw, 'mixed');
    await subscribeNative(env, 'mixed');
    await subscribed(pj, 'mixed');
    const pjGot = nextEvent(pj, 'mixed', 'message');
    await api(server, 'POST', '/broadcast', { token: TOKEN, form: { channel: 'mixed', message: 'to everyone' } });
    await raw.text('to everyone');
    await env.text('{"channel":"mixed","event":"message","data":"to everyone"}');
    assert.equal(await pjGot, 'to everyone');
  });

  it('uses the given event name for Pusher subscribers and keeps JSON data as an object', async () => {
    const raw = await native();
    const pj = await pusher();
    await subscribeNative(raw, 'typed');
    await subscribed(pj, 'typed');
    const pjGot = nextEvent(pj, 'typed', 'order-created');
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'typed', event: 'order-created', data: { id: 9 } } });
    assert.deepEqual(await pjGot, { id: 9 });
    await raw.text('{"id":9}');
  });

  it('delivers a trigger from the pusher server SDK to native clients', async () => {
    const raw = await native();
    const env = await native('/ws?format=envelope');
    await subscribeNative(raw, 'from-sdk');
    await subscribeNative(env, 'from-sdk');
    await serverSdk(server).trigger('from-sdk', 'sdk-event', { hello: 'native' });
    await raw.text('{"hello":"native"}');
    // Pusher's REST API carries data as a string; the envelope passes that string on.
    assert.deepEqual(await env.message((m) => m.event === 'sdk-event'), { channel: 'from-sdk', event: 'sdk-event', data: '{"hello":"native"}' });
  });

  it('delivers a native publish to pusher-js subscribers as event "message"', async () => {
    const sender = await native();
    const pj = await pusher();
    await subscribeNative(sender, 'chatroom');
    await subscribed(pj, 'chatroom');
    const got = nextEvent(pj, 'chatroom', 'message');
    sender.send({ action: 'publish', channel: 'chatroom', data: { text: 'from native' } });
    assert.deepEqual(await got, { text: 'from native' });
  });

  it('delivers a pusher-js client event on a private channel to a native subscriber allowed by its JWT', async () => {
    const env = await nativeAs('nat-private', '&format=envelope', { channels: ['private-shared'] });
    await subscribeNative(env, 'private-shared');
    const pj = await pusher();
    await subscribed(pj, 'private-shared');
    pj.channel('private-shared').trigger('client-typing', { who: 'pj' });
    assert.deepEqual(await env.message((m) => m.event === 'client-typing'), { channel: 'private-shared', event: 'client-typing', data: { who: 'pj' } });
  });

  it('skips the Pusher socket named by socket_id but still delivers to native clients', async () => {
    const raw = await native();
    const pj = await pusher();
    const socketId = await connected(pj);
    await subscribeNative(raw, 'except-mixed');
    await subscribed(pj, 'except-mixed');
    let pjCount = 0;
    pj.channel('except-mixed').bind('message', () => (pjCount += 1));
    const marker = nextEvent(pj, 'except-mixed', 'marker');
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'except-mixed', data: 'not for pj', socket_id: socketId } });
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'except-mixed', event: 'marker', data: 'after' } });
    await marker;
    assert.equal(pjCount, 0);
    await raw.text('not for pj');
  });

  it("sends /send to a user's native sockets and signed-in pusher-js sockets (text, and binary as base64)", async () => {
    const user = 'both-kinds';
    const n1 = await nativeAs(user);
    const n2 = await nativeAs(user);
    const pj = await pusher({ user: { id: user } });
    await pusherSignedIn(pj, user);
    const texts: unknown[] = [];
    const gotTwo = new Promise<void>((resolve) =>
      pj.user.bind('message', (data: unknown) => {
        texts.push(data);
        if (texts.length === 2) resolve();
      }),
    );
    await api(server, 'POST', '/send', { token: TOKEN, query: { user, type: 'text' }, body: 'hello U' });
    const bytes = Buffer.from([1, 2, 3, 254]);
    await api(server, 'POST', '/send', { token: TOKEN, query: { user, type: 'binary' }, body: bytes });
    await n1.text('hello U');
    await n2.text('hello U');
    assert.deepEqual((await n1.frame((f) => f.binary)).data, bytes);
    assert.deepEqual((await n2.frame((f) => f.binary)).data, bytes);
    await gotTwo;
    assert.deepEqual(texts, ['hello U', bytes.toString('base64')]);
  });

  it('sends with ?event= as that event on the Pusher user channel', async () => {
    const pj = await pusher({ user: { id: 'evented' } });
    await pusherSignedIn(pj, 'evented');
    const got = new Promise((resolve) => pj.user.bind('alert', resolve));
    await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'evented', type: 'text', event: 'alert' }, body: 'wake up' });
    assert.equal(await got, 'wake up');
  });

  it('lists both kinds in /info and closes both with /disconnect', async () => {
    const user = 'listed';
    const nat = await nativeAs(user);
    const pj = await pusher({ user: { id: user } });
    await pusherSignedIn(pj, user);
    const raw = await RawClient.connect(server);
    await rawSignedIn(raw, serverSdk(server), { id: user });

    const info = await api(server, 'GET', '/info', { token: TOKEN, query: { user } });
    const conns = info.json.connections as Array<{ id: string; user: string; protocol: string }>;
    assert.deepEqual(conns.map((c) => c.protocol).sort(), ['native', 'pusher', 'pusher']);
    assert.ok(conns.every((c) => c.user === user));
    assert.ok(conns.some((c) => c.id === pj.connection.socket_id));

    // pusher-js (faye-websocket) leaves a 30 s timer behind when the server closes it, which
    // would hold the test process open; the raw Pusher socket shows the server-side close instead.
    pj.disconnect();
    await until(async () => ((await api(server, 'GET', '/info', { token: TOKEN, query: { user } })).json.connections as unknown[]).length === 2, 'both connections in /info');
    assert.deepEqual((await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user } })).json, { success: true, disconnected: 2 });
    assert.equal(await nat.closed, 4009);
    assert.equal(await raw.closed, 4009);
    assert.deepEqual((await api(server, 'GET', '/info', { token: TOKEN, query: { user } })).json, { success: true, connections: [], claims: [] });
  });

  it('disconnects a Pusher connection by its socket id', async () => {
    const raw = await RawClient.connect(server);
    const id = await raw.socketId();
    assert.deepEqual((await api(server, 'POST', '/disconnect', { token: TOKEN, query: { id } })).json, { success: true, disconnected: 1 });
    assert.equal(await raw.closed, 4009);
  });

  it('shares a presence channel between a native JWT user and pusher-js users', async () => {
    const channel = 'presence-shared';
    const nat = await nativeAs('native-user', '&format=envelope', { channels: ['presence-*'], info: { name: 'Native' } });
    await subscribeNative(nat, channel);

    const pj = await pusher({ presence: { user_id: 'pusher-user', user_info: { name: 'Pusher' } } });
    await subscribed(pj, channel);
    const members = (): Member[] => {
      const out: Member[] = [];
      (pj.channel(channel) as unknown as { members: { each(cb: (m: Member) => void): void } }).members.each((m) => out.push({ id: m.id, info: m.info }));
      return out.sort((a, b) => a.id.localeCompare(b.id));
    };
    assert.deepEqual(members(), [
      { id: 'native-user', info: { name: 'Native' } },
      { id: 'pusher-user', info: { name: 'Pusher' } },
    ]);
    assert.deepEqual(await nat.message((m) => m.event === 'member_added'), {
      channel,
      event: 'member_added',
      data: { user_id: 'pusher-user', user_info: { name: 'Pusher' } },
    });

    const added = nextEvent(pj, channel, 'pusher:member_added');
    const late = await nativeAs('late-native', '', { channels: ['presence-shared'], info: { name: 'Late' } });
    await subscribeNative(late, channel);
    assert.deepEqual(await added, { id: 'late-native', info: { name: 'Late' } });

    const removed = nextEvent(pj, channel, 'pusher:member_removed');
    late.close();
    assert.deepEqual(await removed, { id: 'late-native', info: { name: 'Late' } });
  });
});
