import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type HookConnection, type OpenVerdict, type Switchboard } from '../../src/index.js';
import { connected, pusherClient, RawClient, within, type PusherJs } from '../helpers/clients.js';
import { closeAll, connectNative, type NativeClient } from '../helpers/native.js';
import { PROTOCOL_QUERY } from '../helpers/raw-pusher.js';
import { APP } from '../helpers/server.js';
import { errorOf } from '../helpers/users.js';
import { until } from '../helpers/wait.js';

/** One connectionOpened call, waiting for the test's answer. */
interface Opening {
  readonly connection: HookConnection;
  readonly url: string;
  answer(verdict: OpenVerdict): void;
}

/** Frames a connection may be sent while its hook has not answered: the app's send-queue bound. */
const QUEUE_MESSAGES = 3;
/** An app whose full queues drop frames (the test app's close the connection, the default). */
const DROPPING = { id: 'dropping-id', key: 'dropping-key', secret: 'dropping-secret-0123456789' };

/**
 * While an async connectionOpened hook runs, the connection is already known to the hub (so the
 * hook may send to it, and the embedding API can find it), but nothing the hub sends it may reach
 * the client before the hook's answer: a Pusher client must get pusher:connection_established
 * first, and a refused client must get nothing.
 */
describe('connectionOpened: what the hub sends a connection waits for the hook’s answer', () => {
  let sb: Switchboard;
  const openings: Opening[] = [];
  const natives: NativeClient[] = [];
  const raws: RawClient[] = [];
  const pushers: PusherJs[] = [];
  /** Accepted connections, one per app: once a broadcastAll reached them, the hub has handed it to every connection of the app. */
  const witnesses = new Map<string, NativeClient>();

  /** Runs `connect`, then waits for the connectionOpened call it caused. */
  const opening = async <T>(connect: () => Promise<T> | T): Promise<{ client: T; opening: Opening }> => {
    const k = openings.length;
    const client = await connect();
    await until(() => openings.length > k, 'connectionOpened');
    return { client, opening: openings[k] };
  };
  const raw = async (key: string = APP.key, query = ''): Promise<RawClient> => {
    const c = await RawClient.connect(sb, `/app/${key}?${PROTOCOL_QUERY}${query}`);
    raws.push(c);
    return c;
  };
  const native = async (path = '/ws'): Promise<NativeClient> => {
    const c = await connectNative(sb, path);
    natives.push(c);
    return c;
  };
  /** broadcastAll, returning once the app's witness received it (so the gated connection was written to as well). */
  const broadcastAll = async (text: string, event: string, appId: string = APP.id): Promise<void> => {
    sb.broadcastAll(text, { event, appId });
    await (witnesses.get(appId) as NativeClient).text(text);
  };

  before(async () => {
    sb = await createServer(
      {
        host: '127.0.0.1',
        port: 0,
        logLevel: 'silent',
        hookTimeoutMs: 5000,
        apps: [
          { ...APP, maxQueueMessages: QUEUE_MESSAGES },
          { ...DROPPING, maxQueueMessages: QUEUE_MESSAGES, slowConsumerPolicy: 'drop' },
        ],
      },
      {
        hooks: {
          connectionOpened({ connection, url }) {
            // An application's natural welcome: sent from the hook itself, before it answers.
            if (url.includes('welcome=1')) sb.sendToConnection(connection.id, 'welcome aboard', { event: 'welcome', appId: connection.appId });
            return new Promise<OpenVerdict>((resolve) => openings.push({ connection, url, answer: resolve }));
          },
        },
      },
    );
    for (const [appId, path] of [[APP.id, '/ws'], [DROPPING.id, `/ws/${DROPPING.key}`]] as const) {
      const { client, opening: o } = await opening(() => native(path));
      o.answer(undefined);
      witnesses.set(appId, client);
    }
  });
  after(async () => {
    for (const o of openings) o.answer(undefined);
    await closeAll(natives);
    for (const r of raws) r.close();
    for (const p of pushers) p.disconnect();
    await sb.close();
  });

  it('raw Pusher: pusher:connection_established comes first, then what broadcastAll and sendToConnection sent meanwhile, in order', async () => {
    const { client: c, opening: o } = await opening(() => raw());
    sb.sendToConnection(o.connection.id, 'just you', { event: 'direct' });
    await broadcastAll('to everyone', 'announce');
    o.answer(undefined);
    await c.event('announce');
    assert.equal(await c.socketId(), o.connection.id);
    assert.deepEqual(
      c.messages.map((m) => [m.event, m.event === 'pusher:connection_established' ? '' : m.data]),
      [
        ['pusher:connection_established', ''],
        ['direct', 'just you'],
        ['announce', 'to everyone'],
      ],
    );
  });

  it('raw Pusher: a message the hook itself sends to its connection comes after pusher:connection_established', async () => {
    const { client: c, opening: o } = await opening(() => raw(APP.key, '&welcome=1'));
    o.answer(undefined);
    await c.event('welcome');
    assert.deepEqual(c.messages.map((m) => m.event), ['pusher:connection_established', 'welcome']);
  });

  it('pusher-js connects once and gets the broadcastAll sent while its hook was running', async () => {
    const { client: pj, opening: o } = await opening(() => {
      const client = pusherClient(sb);
      pushers.push(client);
      return client;
    });
    const got: Array<[string, unknown]> = [];
    pj.bind_global((event: string, data: unknown) => got.push([event, data]));
    await broadcastAll('while you were opening', 'announce');
    o.answer(undefined);
    assert.equal(await within(connected(pj), 'pusher-js connected'), o.connection.id);
    await until(() => got.some(([e]) => e === 'announce'), 'the held broadcast');
    assert.deepEqual(got.filter(([e]) => !e.startsWith('pusher:')), [['announce', 'while you were opening']]);
    // pusher-js takes any other first frame for a failed handshake and reconnects: it did not.
    assert.equal(openings.filter((x) => x.url.includes('client=js')).length, 1);
  });

  it('native: what was sent while the hook ran arrives once it accepts', async () => {
    const { client: n, opening: o } = await opening(() => native());
    sb.sendToConnection(o.connection.id, 'direct to native');
    await broadcastAll('all natives too', 'announce');
    o.answer(undefined);
    await n.text('all natives too');
    assert.deepEqual(n.texts, ['direct to native', 'all natives too']);
  });

  it('a refused connection gets none of it: raw Pusher only its pusher:error and 4010, native only 4010', async () => {
    const { client: c, opening: pusherOpening } = await opening(() => raw());
    const { client: n, opening: nativeOpening } = await opening(() => native());
    sb.sendToConnection(pusherOpening.connection.id, 'not for the refused');
    sb.sendToConnection(nativeOpening.connection.id, 'not for the refused');
    await broadcastAll('nor this', 'announce');
    pusherOpening.answer({ reject: 'Not today' });
    nativeOpening.answer({ reject: 'Not today' });
    assert.equal(await within(c.closed, 'Pusher close'), 4010);
    assert.deepEqual(c.messages.map((m) => m.event), ['pusher:error']);
    assert.deepEqual(errorOf(c.messages[0]), { code: 4010, message: 'Not today' });
    assert.equal(await within(n.closed, 'native close'), 4010);
    assert.deepEqual(n.frames, []);
  });

  it('held frames are bounded by the app’s send queue: past it, the default policy closes the connection (4100) without waiting for the hook', async () => {
    const before = sb.metrics().counters.slow_consumer_closes;
    const { client: c, opening: o } = await opening(() => raw());
    for (let i = 1; i <= QUEUE_MESSAGES + 1; i++) await broadcastAll(`flood ${i}`, 'flood');
    assert.equal(await within(c.closed, 'close'), 4100);
    assert.deepEqual(c.messages.map((m) => m.event), ['pusher:error']);
    assert.equal(sb.metrics().counters.slow_consumer_closes, before + 1);
    o.answer(undefined); // too late: nothing more is sent
  });

  it('held frames past the bound, with slowConsumerPolicy "drop": dropped and counted, the rest delivered in order after the answer', async () => {
    const before = sb.metrics(DROPPING.id).counters.messages_dropped;
    const { client: c, opening: o } = await opening(() => raw(DROPPING.key));
    for (let i = 1; i <= QUEUE_MESSAGES + 2; i++) await broadcastAll(`flood ${i}`, 'flood', DROPPING.id);
    assert.equal(sb.metrics(DROPPING.id).counters.messages_dropped, before + 2);
    o.answer(undefined);
    await c.event('pusher:connection_established');
    // The pong answers a frame sent after the answer: everything held was written before it.
    c.send({ event: 'pusher:ping', data: {} });
    await c.event('pusher:pong');
    assert.deepEqual(
      c.messages.slice(1).map((m) => m.data),
      ['flood 1', 'flood 2', 'flood 3', '{}'],
    );
  });
});
