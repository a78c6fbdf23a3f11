import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { nativeClient } from '../helpers/client-packages.js';
import { CHAT_HISTORY, chatChannels, numbered } from '../helpers/history.js';
import { eventually } from '../helpers/wait.js';
import { api, makeJwt, nowSeconds } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const { SwitchboardClient } = nativeClient;
type Client = InstanceType<typeof SwitchboardClient>;
type Recovery = Parameters<NonNullable<Parameters<Client['subscribe']>[1]['onRecovery']>>[0];

const TOKEN = 'native-client-api-token-0123';
const JWT_SECRET = 'native-client-jwt-secret-0123456789';
const HISTORY_APP = { ...APP, apiToken: TOKEN, jwtSecret: JWT_SECRET, clientPublish: true, history: CHAT_HISTORY };

/** The native client library (clients/js) in Node against real servers: drops, restarts, backend disconnects. */
describe('native client library (clients/js) in Node', () => {
  let server: Switchboard;
  const channel = chatChannels();

  before(async () => {
    server = await startServer({ apps: [HISTORY_APP] });
  });
  after(() => server.close());

  const broadcast = async (target: Switchboard, ch: string, from: number, to: number) => {
    for (let i = from; i <= to; i += 1) {
      const reply = await api(target, 'POST', '/broadcast', { token: TOKEN, json: { channel: ch, event: 'note', data: { i } } });
      assert.equal(reply.status, 200);
    }
  };

  /** A client on `ch` recording what it receives, its recoveries and its states. */
  const open = (t: { after: (fn: () => unknown) => void }, url: string | string[], ch: string) => {
    const got: unknown[] = [];
    const recoveries: Recovery[] = [];
    const states: string[] = [];
    const client = new SwitchboardClient({ url, minDelayMs: 50, maxDelayMs: 400, onStateChange: (s) => states.push(s) });
    client.subscribe(ch, { onMessage: (m) => got.push(m.data), onRecovery: (r) => recoveries.push(r) });
    t.after(() => client.close());
    return { client, got, recoveries, states };
  };

  it('reconnects by itself after the connection drops and resumes: the missed messages once, in order, then live ones', async (t) => {
    const proxy = await TcpProxy.start(server.port);
    t.after(() => proxy.close());
    const ch = channel();
    const { client, got, recoveries, states } = open(t, `ws://127.0.0.1:${proxy.port}/ws`, ch);
    await eventually(() => recoveries.length === 1, 'subscribed');
    assert.deepEqual([recoveries[0].recovered, recoveries[0].resumed], [false, false]); // a first subscribe has nothing to resume
    await broadcast(server, ch, 1, 3);
    await eventually(() => got.length === 3, 'the first three');

    proxy.cut(); // stays refused until restored: the client retries with its backoff meanwhile
    await eventually(() => client.state === 'reconnecting', 'the client noticed');
    await broadcast(server, ch, 4, 7);
    proxy.restore();
    await eventually(() => got.length >= 7, `the missed messages (got ${JSON.stringify(got)})`, 10_000);
    await broadcast(server, ch, 8, 9);
    await eventually(() => got.length >= 9, 'live after the replay');
    assert.deepEqual(got, numbered(1, 9));
    assert.deepEqual(recoveries.slice(1).map((r) => [r.recovered, r.resumed]), [[true, true]]);
    assert.equal(client.position(ch)?.offset, 9);
    assert.deepEqual(states.slice(0, 3), ['open', 'reconnecting', 'open']);
  });

  it('after a server restart (memory history gone) says recovered: false once, and goes on live', async (t) => {
    const own = await startServer({ apps: [HISTORY_APP] });
    let current = own;
    t.after(() => current.close());
    const ch = channel();
    const { got, recoveries } = open(t, `ws://127.0.0.1:${own.port}/ws`, ch);
    await eventually(() => recoveries.length === 1, 'subscribed');
    await broadcast(own, ch, 1, 2);
    await eventually(() => got.length === 2, 'the first two');

    const port = own.port;
    await own.close();
    current = await startServer({ apps: [HISTORY_APP], port });
    await eventually(() => recoveries.length === 2, 'resubscribed', 10_000);
    assert.deepEqual([recoveries[1].recovered, recoveries[1].resumed], [false, true]);
    await broadcast(current, ch, 3, 3);
    await eventually(() => got.length === 3, 'live after the restart');
    assert.deepEqual(got, numbered(1, 3));
  });

  it('publishes to a channel, resubscribes every channel after a reconnect, and stops for good on a backend disconnect (4009)', async (t) => {
    const proxy = await TcpProxy.start(server.port);
    t.after(() => proxy.close());
    const ch = channel();
    const plain = `plain-${ch}`;
    const jwt = await makeJwt(JWT_SECRET, { sub: 'ada', iat: nowSeconds(), exp: nowSeconds() + 600 });
    const { client, recoveries } = open(t, `ws://127.0.0.1:${proxy.port}/ws?jwt=${jwt}`, ch);
    const plainGot: unknown[] = [];
    client.subscribe(plain, { onMessage: (m) => plainGot.push(m.data) });
    const watcher = open(t, `ws://127.0.0.1:${server.port}/ws`, ch);
    await eventually(() => recoveries.length === 1 && watcher.recoveries.length === 1, 'both subscribed');
    assert.equal(client.publish(ch, { from: 'client' }, 'note'), true);
    await eventually(() => watcher.got.length === 1, 'the watcher got the client publish');
    assert.deepEqual(watcher.got, [{ from: 'client' }]);

    proxy.cut();
    await eventually(() => client.state === 'reconnecting', 'the client noticed');
    assert.equal(client.publish(ch, 'lost'), false); // nothing queued while away
    proxy.restore();
    await eventually(() => recoveries.length === 2, 'resubscribed');
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: plain, data: 'again' } });
    await eventually(() => plainGot.length === 1, 'the channel without history was resubscribed too');

    const info = await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user: 'ada' } });
    assert.equal(info.json.disconnected, 1);
    await eventually(() => client.state === 'closed', 'closed for good');
  });
});
