import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Echo, { type EchoOptions } from 'laravel-echo';
import type { Switchboard } from '../../src/index.js';
import { pusherRecovery } from '../helpers/client-packages.js';
import { CHAT_HISTORY, chatChannels, numbered } from '../helpers/history.js';
import { PusherJs, RawClient, connected, loopbackOptions, serverSdk, subscribed } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';
import { APP, startServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const { withRecovery } = pusherRecovery;
/** As in laravel-echo.test.ts: Echo's typings read pusher-js's default export as the module namespace. */
type EchoPusherClass = NonNullable<EchoOptions<'pusher'>['Pusher']>;
type Position = { epoch: string; offset: number };
const HISTORY_APP = { ...APP, history: CHAT_HISTORY };

/**
 * Pusher-protocol recovery: real pusher-js (unmodified) with the repository's helper, behind a
 * TCP proxy the test cuts; events published through the REST API (the official SDK) meanwhile.
 */
describe('Pusher-protocol recovery (pusher-js + clients/pusher-recovery)', () => {
  let server: Switchboard;
  const channel = chatChannels();

  before(async () => {
    server = await startServer({ apps: [HISTORY_APP] });
  });
  after(() => server.close());

  /** A pusher-js client through a proxy of its own, with the helper on it. */
  const recoveringClient = async (t: { after: (fn: () => unknown) => void }, target: () => number) => {
    const proxy = await TcpProxy.start(target());
    const pusher = new PusherJs(APP.key, loopbackOptions({ port: proxy.port }));
    const failures: Array<{ channel: string; position: Position | undefined }> = [];
    const recovery = withRecovery(pusher, { onRecoveryFailed: (f) => failures.push(f) });
    t.after(async () => {
      pusher.disconnect();
      await proxy.close();
    });
    await connected(pusher);
    return { proxy, pusher, recovery, failures };
  };
  const collect = (pusher: PusherJs, ch: string): unknown[] => {
    const got: unknown[] = [];
    pusher.subscribe(ch).bind('note', (data: unknown) => got.push(data));
    return got;
  };
  const publish = async (ch: string, from: number, to: number) => {
    const sdk = serverSdk(server);
    for (let i = from; i <= to; i += 1) await sdk.trigger(ch, 'note', { i });
  };

  /** Events 1-3 live, a cut while 4-8 are published, then 9-11 live: the app must see 1-11 once, in order. */
  const dropAndRecover = async (pusher: PusherJs, proxy: TcpProxy, got: unknown[], ch: string) => {
    await eventually(() => pusher.channel(ch)?.subscribed, 'subscribed');
    await publish(ch, 1, 3);
    await eventually(() => got.length === 3, 'the first three events');
    proxy.cut();
    await eventually(() => pusher.connection.state !== 'connected', 'pusher-js noticed the cut');
    await publish(ch, 4, 8); // while the client is away
    proxy.restore();
    await eventually(() => got.length >= 8, `the missed events (got ${JSON.stringify(got)})`, 20_000);
    await publish(ch, 9, 10);
    await eventually(() => got.length >= 10, 'live events after the replay');
    await publish(ch, 11, 11);
    await eventually(() => got.length >= 11, 'one more');
    assert.deepEqual(got, numbered(1, 11));
  };

  it('after a dropped connection, pusher-js reconnects by itself and the app gets exactly the missed events once, in order, then live ones', async (t) => {
    const ch = channel();
    const { proxy, pusher, recovery, failures } = await recoveringClient(t, () => server.port);
    await dropAndRecover(pusher, proxy, collect(pusher, ch), ch);
    assert.deepEqual(recovery.position(ch)?.offset, 11);
    assert.deepEqual(failures, []);
  });

  it('works the same under Laravel Echo: withRecovery(echo.connector.pusher)', async (t) => {
    const ch = channel();
    const proxy = await TcpProxy.start(server.port);
    const echo = new Echo({ broadcaster: 'pusher', key: APP.key, ...loopbackOptions({ port: proxy.port }), Pusher: PusherJs as unknown as EchoPusherClass });
    t.after(async () => {
      echo.disconnect();
      await proxy.close();
    });
    const pusher = echo.connector.pusher as unknown as PusherJs; // Echo's typings of pusher-js: see EchoPusherClass
    const recovery = withRecovery(pusher);
    const got: unknown[] = [];
    echo.channel(ch).listen('.note', (data: unknown) => got.push(data));
    await dropAndRecover(pusher, proxy, got, ch);
    assert.equal(recovery.position(ch)?.offset, 11);
  });

  it('tells the app when the history no longer reaches back (the server restarted: a new epoch), and goes on live', async (t) => {
    const own = await startServer({ apps: [HISTORY_APP] });
    let current = own;
    t.after(() => current.close());
    const port = own.port;
    const { pusher, recovery, failures } = await recoveringClient(t, () => port);
    const ch = channel();
    const got = collect(pusher, ch);
    await eventually(() => pusher.channel(ch)?.subscribed, 'subscribed');
    await serverSdk(own).trigger(ch, 'note', { i: 1 });
    await eventually(() => got.length === 1, 'the first event');
    const before = recovery.position(ch);
    assert.ok(before);

    await own.close(); // memory history gone with it
    current = await startServer({ apps: [HISTORY_APP], port });
    await eventually(() => failures.length > 0, 'onRecoveryFailed', 20_000);
    assert.equal(failures.length, 1);
    assert.equal(failures[0].channel, ch);
    assert.notEqual(failures[0].position?.epoch, before.epoch);
    await serverSdk(current).trigger(ch, 'note', { i: 2 });
    await eventually(() => got.length === 2, 'live after the failure');
    assert.deepEqual(got, [{ i: 1 }, { i: 2 }]);
    // The restarted server had kept nothing on the channel: its first message starts the new epoch.
    assert.equal(recovery.position(ch)?.offset, 1);
    assert.notEqual(recovery.position(ch)?.epoch, before.epoch);
  });

  it('pusher-js without the helper sees history channels as any other: its events, nothing more', async (t) => {
    const pusher = new PusherJs(APP.key, loopbackOptions(server));
    t.after(() => pusher.disconnect());
    const ch = channel();
    const got: unknown[] = [];
    pusher.subscribe(ch).bind('note', (data: unknown, meta: unknown) => got.push([data, meta]));
    await subscribed(pusher, ch);
    await publish(ch, 1, 2);
    await eventually(() => got.length === 2, 'two events');
    assert.deepEqual(got, [[{ i: 1 }, {}], [{ i: 2 }, {}]]);
  });

  it('puts the position on event frames and on subscription_succeeded; answers since with recovered and the replay', async (t) => {
    const ch = channel();
    const raw = await RawClient.connect(server);
    t.after(() => raw.close());
    await raw.socketId();
    raw.send({ event: 'pusher:subscribe', data: { channel: ch } });
    const ok = (await raw.event('pusher_internal:subscription_succeeded', ch)) as unknown as { position: Position; recovered?: boolean };
    assert.equal(ok.position.offset, 0);
    assert.equal('recovered' in ok, false);
    await publish(ch, 1, 3);
    const third = (await raw.next((m) => m.channel === ch && m.event === 'note' && (m as { position?: Position }).position?.offset === 3)) as unknown as { data: string; position: Position };
    assert.equal(third.data, '{"i":3}');
    const epoch = third.position.epoch;

    const back = await RawClient.connect(server);
    t.after(() => back.close());
    await back.socketId();
    back.send({ event: 'pusher:subscribe', data: { channel: ch, since: { epoch, offset: 1 } } });
    const resumed = (await back.event('pusher_internal:subscription_succeeded', ch)) as unknown as { position: Position; recovered: boolean };
    assert.equal(resumed.recovered, true);
    assert.deepEqual(resumed.position, { epoch, offset: 3 });
    await back.next((m) => m.channel === ch && (m as { position?: Position }).position?.offset === 3);
    const frames = back.messages.filter((m) => m.channel === ch).map((m) => [m.event, (m as { position?: Position }).position?.offset]);
    assert.deepEqual(frames, [['pusher_internal:subscription_succeeded', 3], ['note', 2], ['note', 3]]);
  });

  it('answers a malformed since with pusher:error 4300, and subscribes without a replay (recovered: false)', async (t) => {
    const ch = channel();
    const raw = await RawClient.connect(server);
    t.after(() => raw.close());
    await raw.socketId();
    raw.send({ event: 'pusher:subscribe', data: { channel: ch, since: { epoch: 7, offset: -1 } } });
    const error = await raw.event('pusher:error');
    assert.equal((error.data as { code: number }).code, 4300);
    const ok = (await raw.event('pusher_internal:subscription_succeeded', ch)) as unknown as { recovered: boolean };
    assert.equal(ok.recovered, false);
  });
});
