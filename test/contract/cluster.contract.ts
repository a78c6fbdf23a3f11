import assert from 'node:assert/strict';
import { after, before, describe, it, type TestContext } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { connected, pusherClient, RawClient, serverSdk, subscribed } from '../helpers/clients.js';
import { CountingSubscriber, keepAliveAgent, killEverything, makeTmpDir, startNode, startNodes, stopNodes, uniquePrefix, writeConfig, type EngineEnv, type NodeOptions, type SwitchboardNode } from '../helpers/cluster.js';
import { api, connectNative, makeJwt, nowSeconds, refusal, subscribeNative, type NativeClient } from '../helpers/native.js';
import { restGet } from '../helpers/raw-pusher.js';
import { APP } from '../helpers/server.js';
import { startReceiver } from '../helpers/webhook-receiver.js';
import { send, signedRequest } from '../helpers/signed-request.js';
import { dataOf, rawSignedIn, rawSubscribed, type RawMessage } from '../helpers/users.js';
import { eventually } from '../helpers/wait.js';

/**
 * One contract for every scaling engine: Switchboard nodes run as real child processes against
 * the engine, and behave as one server. A runner (test/integration/cluster-*.test.ts) says how
 * to reach its engine and how to get a private one that the restart case may stop.
 */
export interface EngineUnderTest {
  readonly name: string;
  /** Why the engine cannot be used on this machine, or undefined. */
  unavailable(): Promise<string | undefined>;
  /** The engine most cases share (one per suite, with a unique prefix per cluster). */
  shared(): Promise<{ readonly env: EngineEnv; close(): Promise<void> }>;
  /** An engine for one test only, which it stops and starts again. */
  throwaway(): Promise<{ readonly env: EngineEnv; stop(): Promise<void>; start(): Promise<void> }>;
  /** Removes what a cluster with this prefix left in the shared engine (e.g. a JetStream bucket). */
  cleanup?(prefix: string): Promise<void>;
  /** The nodes' clusterRouting (default broadcast). */
  readonly routing?: 'broadcast' | 'interest';
}

const TOKEN = 'cluster-contract-api-token';
const JWT_SECRET = 'cluster-contract-jwt-secret';
const HEARTBEAT_MS = 200;
const NODE_TIMEOUT_MS = 1500;
// The burst's subscribers run in the test process, which may read slower than three nodes write:
// room for the whole burst in each socket's queue, so the slow-consumer policy stays out of it.
/** An app whose connection quota counts the whole cluster. */
const QUOTA_APP = { id: 'quota-app', key: 'quota-key', secret: 'quota-secret', maxConnections: 2 };

const APPS = [
  { ...APP, enableClientMessages: true, enableSubscriptionCount: true, apiToken: TOKEN, jwtSecret: JWT_SECRET, maxQueueMessages: 20_000, maxQueueBytes: 16 * 1024 * 1024 },
  QUOTA_APP,
];

type Closable = { close(): void } | { disconnect(): void };

/** Clients a test opened, closed when it ends whatever happened. */
function opened(t: TestContext): <T extends Closable>(client: T) => T {
  const list: Closable[] = [];
  t.after(() => {
    for (const c of list) {
      if ('disconnect' in c) c.disconnect();
      else c.close();
    }
  });
  return (client) => {
    list.push(client);
    return client;
  };
}

let ids = 0;
/** A name no other test of this run uses. */
function fresh(label: string): string {
  ids += 1;
  return `${label}-${ids}-${process.pid}`;
}

/** Waits for pusher:pong: everything the server wrote to this socket before it has arrived. */
async function sync(raw: RawClient): Promise<void> {
  const pongs = (): number => raw.messages.filter((m) => m.event === 'pusher:pong').length;
  const want = pongs() + 1;
  raw.send({ event: 'pusher:ping', data: {} });
  await raw.next(() => pongs() >= want);
}

const named = (event: string, channel: string) => (m: RawMessage) => m.event === event && m.channel === channel;
const count = (raw: RawClient, pred: (m: RawMessage) => boolean): number => raw.messages.filter(pred).length;
const memberEvent = (event: 'pusher_internal:member_added' | 'pusher_internal:member_removed', channel: string, userId: string) => (m: RawMessage) =>
  m.event === event && m.channel === channel && (dataOf(m) as { user_id?: string }).user_id === userId;

/** The presence hash of a subscription_succeeded frame. */
function presenceOf(m: RawMessage): { count: number; ids: string[]; hash: Record<string, unknown> } {
  const p = (dataOf(m) as { presence: { count: number; ids: string[]; hash: Record<string, unknown> } }).presence;
  return { ...p, ids: [...p.ids].sort() };
}

/** Polls `read` on every node until each answers `expected` (bounded), then asserts it. */
async function sameOnEveryNode(nodes: readonly SwitchboardNode[], read: (node: SwitchboardNode) => Promise<unknown>, expected: unknown, what: string, timeoutMs = 5000): Promise<void> {
  let last: unknown[] | undefined;
  let failure: unknown;
  try {
    await eventually(
      async () => {
        last = await Promise.all(nodes.map(read));
        return last.every((a) => isDeepStrictEqual(a, expected));
      },
      what,
      timeoutMs,
    );
  } catch (err) {
    failure = err; // an assertion below shows the difference, unless no node ever answered
  }
  if (last === undefined) throw failure;
  for (const [i, a] of last.entries()) assert.deepEqual(a, expected, `${what} on ${nodes[i]?.name}\n${nodes.map((n) => n.tail(8)).join('\n')}`);
}

/** Users of a presence channel as one node sees them, sorted. */
async function usersOn(node: SwitchboardNode, channel: string): Promise<string[]> {
  const reply = (await restGet(serverSdk(node.server), `/channels/${channel}/users`)) as { users: Array<{ id: string }> };
  return reply.users.map((u) => u.id).sort();
}

async function subscriptionCountOn(node: SwitchboardNode, channel: string): Promise<unknown> {
  return restGet(serverSdk(node.server), `/channels/${channel}`, { info: 'subscription_count' });
}

async function rawOn(node: SwitchboardNode): Promise<RawClient> {
  return RawClient.connect(node.server);
}

async function nativeAs(node: SwitchboardNode, user: string, session?: string): Promise<NativeClient> {
  const token = await makeJwt(JWT_SECRET, { sub: user, exp: nowSeconds() + 60, ...(session ? { sid: session } : {}) });
  return connectNative(node.server, `/ws?ack=1&jwt=${token}`);
}

type ConnectionInfo = { id: string; worker: string; user?: string; protocol: string };

async function infoOf(node: SwitchboardNode, user: string): Promise<ConnectionInfo[]> {
  const reply = await api(node.server, 'GET', '/info', { token: TOKEN, query: { user } });
  assert.equal(reply.status, 200, JSON.stringify(reply.json));
  return (reply.json.connections as ConnectionInfo[]).sort((a, b) => (a.worker < b.worker ? -1 : 1));
}

/** The node id a node answers /info with, found through a native connection of a throwaway user. */
async function workerOf(node: SwitchboardNode): Promise<string> {
  const user = fresh('probe');
  const c = await nativeAs(node, user);
  try {
    const [conn] = await infoOf(node, user);
    assert.ok(conn);
    return conn.worker;
  } finally {
    c.close();
  }
}

export async function clusterSuite(engine: EngineUnderTest): Promise<void> {
  const skip = await engine.unavailable();
  if (skip) console.log(`cluster contract on ${engine.name} skipped: ${skip}`);

  const routing = engine.routing ?? 'broadcast';
  describe(`cluster contract: ${engine.name}, ${routing} routing`, { skip: skip ?? false }, () => {
    let configFile = '';
    let shared: { readonly env: EngineEnv; close(): Promise<void> } | undefined;
    const prefixes: string[] = [];

    const options = (env: EngineEnv, extra: Partial<NodeOptions> = {}): NodeOptions => {
      const prefix = uniquePrefix(engine.name);
      prefixes.push(prefix);
      return { engine: env, prefix, configFile, heartbeatIntervalMs: HEARTBEAT_MS, nodeTimeoutMs: NODE_TIMEOUT_MS, routing, ...extra };
    };
    /** A cluster of its own for one test, stopped when the test ends. */
    const ownCluster = async (t: TestContext, count: number, extra: Partial<NodeOptions> = {}): Promise<SwitchboardNode[]> => {
      const nodes = await startNodes(count, options((shared as { env: EngineEnv }).env, extra));
      t.after(() => stopNodes(nodes));
      return nodes;
    };

    before(async () => {
      configFile = writeConfig(makeTmpDir('cluster-config'), { apps: APPS });
      shared = await engine.shared();
    });
    after(async () => {
      await killEverything();
      await shared?.close();
      if (engine.cleanup) for (const prefix of prefixes) await engine.cleanup(prefix);
    });

    describe('three nodes as one server', () => {
      let nodes: SwitchboardNode[] = [];
      let n1: SwitchboardNode, n2: SwitchboardNode, n3: SwitchboardNode;
      before(async () => {
        nodes = await startNodes(3, options((shared as { env: EngineEnv }).env));
        [n1, n2, n3] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
      });
      after(() => stopNodes(nodes));

      it('delivers an SDK trigger on node 2 to pusher-js on node 1 and a raw Pusher client on node 3, exactly once', async (t) => {
        const keep = opened(t);
        const channel = fresh('orders');
        const js = keep(pusherClient(n1.server));
        await connected(js);
        await subscribed(js, channel);
        const raw = keep(await rawOn(n3));
        await rawSubscribed(raw, channel);
        const got: unknown[] = [];
        js.channel(channel).bind('created', (data: unknown) => got.push(data));
        const marker = new Promise((resolve) => js.channel(channel).bind('marker', resolve));

        const sdk = serverSdk(n2.server);
        await sdk.trigger(channel, 'created', { id: 7 });
        // A second event from the same publisher on the same channel: anything duplicated comes before it.
        await sdk.trigger(channel, 'marker', {});
        await marker;
        await raw.event('marker', channel);
        assert.deepEqual(got, [{ id: 7 }]);
        const onRaw = raw.messages.filter(named('created', channel));
        assert.equal(onRaw.length, 1);
        assert.deepEqual(dataOf(onRaw[0]), { id: 7 });
      });

      it('leaves out the socket_id given to a trigger even when that socket is on another node', async (t) => {
        const keep = opened(t);
        const channel = fresh('except');
        const [sender, other] = [keep(await rawOn(n3)), keep(await rawOn(n2))];
        await rawSubscribed(sender, channel);
        await rawSubscribed(other, channel);
        const sdk = serverSdk(n1.server);
        await sdk.trigger(channel, 'echo', { n: 1 }, { socket_id: await sender.socketId() });
        await sdk.trigger(channel, 'marker', {});
        await other.event('marker', channel);
        await sender.event('marker', channel);
        assert.equal(count(other, named('echo', channel)), 1);
        assert.equal(count(sender, named('echo', channel)), 0);
      });

      it('carries a client event from node 3 to the subscribers on nodes 1 and 2 but not back to its sender', async (t) => {
        const keep = opened(t);
        const channel = `private-${fresh('chat')}`;
        const sdk = serverSdk(n1.server);
        const js = keep(pusherClient(n1.server));
        await connected(js);
        await subscribed(js, channel);
        const [two, sender] = [keep(await rawOn(n2)), keep(await rawOn(n3))];
        await rawSubscribed(two, channel, sdk);
        await rawSubscribed(sender, channel, sdk);
        const onJs = new Promise((resolve) => js.channel(channel).bind('client-typing', resolve));

        sender.send({ event: 'client-typing', channel, data: { who: 'sender' } });
        assert.deepEqual(await onJs, { who: 'sender' });
        assert.deepEqual(dataOf(await two.event('client-typing', channel)), { who: 'sender' });
        await sdk.trigger(channel, 'marker', {});
        await sender.event('marker', channel);
        assert.equal(count(sender, named('client-typing', channel)), 0);
      });

      it('delivers a native /broadcast on node 1 to native clients on nodes 2 and 3 and a Pusher client on node 1, exactly once', async (t) => {
        const keep = opened(t);
        const channel = fresh('native');
        const [c2, c3] = [keep(await connectNative(n2.server, '/ws?ack=1')), keep(await connectNative(n3.server, '/ws?ack=1'))];
        await subscribeNative(c2, channel);
        await subscribeNative(c3, channel);
        const pusher = keep(await rawOn(n1));
        await rawSubscribed(pusher, channel);

        const broadcast = async (data: string): Promise<void> => {
          assert.deepEqual(await api(n1.server, 'POST', '/broadcast', { token: TOKEN, json: { channel, data } }), { status: 200, json: { success: true } });
        };
        await broadcast('hello, cluster');
        await broadcast('marker');
        for (const c of [c2, c3]) {
          await c.text('marker');
          assert.deepEqual(c.deliveries.map((f) => f.text), ['hello, cluster', 'marker']);
        }
        const m = await pusher.next((f) => f.channel === channel && f.data === 'marker');
        assert.equal(m.event, 'message');
        assert.deepEqual(
          pusher.messages.filter((f) => f.event === 'message' && f.channel === channel).map((f) => f.data),
          ['hello, cluster', 'marker'],
        );
      });

      it('keeps presence cluster-wide: one member per user however many nodes it is on, added on its first socket and removed on its last', async (t) => {
        const keep = opened(t);
        const channel = `presence-${fresh('room')}`;
        const sdk = serverSdk(n1.server);
        const watchers: RawClient[] = [];
        for (const [i, node] of nodes.entries()) {
          const w = keep(await rawOn(node));
          await rawSubscribed(w, channel, sdk, { user_id: `w${i + 1}` });
          watchers.push(w);
        }
        await sameOnEveryNode(nodes, (n) => usersOn(n, channel), ['w1', 'w2', 'w3'], 'users after the watchers joined');
        /** Once every node counts `subscribers`, it has applied the presence change that came with them; then each watcher's socket is flushed. */
        const settle = async (subscribers: number): Promise<void> => {
          await sameOnEveryNode(nodes, (n) => subscriptionCountOn(n, channel), { occupied: subscribers > 0, subscription_count: subscribers }, 'subscription_count');
          for (const w of watchers) await sync(w);
        };
        const added = memberEvent('pusher_internal:member_added', channel, 'ann');
        const removed = memberEvent('pusher_internal:member_removed', channel, 'ann');

        // Ann's first socket, on node 1: every watcher hears member_added once.
        const ann1 = keep(await rawOn(n1));
        const first = await rawSubscribed(ann1, channel, sdk, { user_id: 'ann', user_info: { name: 'Ann' } });
        assert.deepEqual(presenceOf(first).ids, ['ann', 'w1', 'w2', 'w3']);
        for (const w of watchers) {
          const m = await w.next(added);
          assert.deepEqual(dataOf(m), { user_id: 'ann', user_info: { name: 'Ann' } });
        }

        // Ann again, on node 2: one member still, no second member_added anywhere.
        const ann2 = keep(await rawOn(n2));
        const second = await rawSubscribed(ann2, channel, sdk, { user_id: 'ann', user_info: { name: 'Ann' } });
        assert.deepEqual(presenceOf(second), {
          count: 4,
          ids: ['ann', 'w1', 'w2', 'w3'],
          hash: { ann: { name: 'Ann' }, w1: null, w2: null, w3: null },
        });
        await settle(5);
        for (const w of watchers) assert.equal(count(w, added), 1);
        assert.equal(count(ann1, added), 0);
        await sameOnEveryNode(nodes, (n) => usersOn(n, channel), ['ann', 'w1', 'w2', 'w3'], 'users with ann on two nodes');
        await sameOnEveryNode(nodes, (n) => restGet(serverSdk(n.server), `/channels/${channel}`, { info: 'user_count' }), { occupied: true, user_count: 4 }, 'user_count');

        // Her node-1 socket leaves: she is still on node 2, so nobody hears member_removed.
        ann1.close();
        await settle(4);
        for (const w of watchers) assert.equal(count(w, removed), 0);
        assert.equal(count(ann2, removed), 0);
        await sameOnEveryNode(nodes, (n) => usersOn(n, channel), ['ann', 'w1', 'w2', 'w3'], 'users after one of two sockets left');

        // Her last socket leaves: every watcher hears member_removed, once.
        ann2.close();
        for (const w of watchers) assert.deepEqual(dataOf(await w.next(removed)), { user_id: 'ann' });
        await settle(3);
        for (const w of watchers) assert.equal(count(w, removed), 1);
        await sameOnEveryNode(nodes, (n) => usersOn(n, channel), ['w1', 'w2', 'w3'], 'users after her last socket left');
      });

      it('answers channel lists, subscription_count, user_count and users the same on every node', async (t) => {
        const keep = opened(t);
        const base = fresh('counts');
        const [a, b, p] = [`${base}-a`, `${base}-b`, `presence-${base}`];
        const sdk = serverSdk(n1.server);
        const a1 = keep(await rawOn(n1));
        const a2 = keep(await rawOn(n2));
        const a2bis = keep(await rawOn(n2));
        const b3 = keep(await rawOn(n3));
        for (const [raw, channel] of [[a1, a], [a2, a], [a2bis, a], [b3, b]] as const) await rawSubscribed(raw, channel);
        const u1 = keep(await rawOn(n1));
        const u2 = keep(await rawOn(n2));
        const u2bis = keep(await rawOn(n3));
        await rawSubscribed(u1, p, sdk, { user_id: 'u1' });
        await rawSubscribed(u2, p, sdk, { user_id: 'u2' });
        await rawSubscribed(u2bis, p, sdk, { user_id: 'u2' });

        const list = (n: SwitchboardNode): Promise<unknown> => restGet(serverSdk(n.server), '/channels', { filter_by_prefix: base });
        const presenceList = (n: SwitchboardNode): Promise<unknown> => restGet(serverSdk(n.server), '/channels', { filter_by_prefix: p, info: 'user_count' });
        const presenceInfo = (n: SwitchboardNode): Promise<unknown> => restGet(serverSdk(n.server), `/channels/${p}`, { info: 'user_count,subscription_count' });
        await sameOnEveryNode(nodes, list, { channels: { [a]: {}, [b]: {} } }, 'channel list');
        await sameOnEveryNode(nodes, presenceList, { channels: { [p]: { user_count: 2 } } }, 'presence channel list');
        await sameOnEveryNode(nodes, (n) => subscriptionCountOn(n, a), { occupied: true, subscription_count: 3 }, 'subscription_count of a');
        await sameOnEveryNode(nodes, presenceInfo, { occupied: true, user_count: 2, subscription_count: 3 }, 'presence channel info');
        await sameOnEveryNode(nodes, (n) => usersOn(n, p), ['u1', 'u2'], 'users');

        // Leaves on one node change every node's answers.
        a2.close();
        u2.close();
        b3.close();
        await sameOnEveryNode(nodes, list, { channels: { [a]: {} } }, 'channel list after leaves');
        await sameOnEveryNode(nodes, (n) => subscriptionCountOn(n, a), { occupied: true, subscription_count: 2 }, 'subscription_count of a after a leave');
        await sameOnEveryNode(nodes, (n) => subscriptionCountOn(n, b), { occupied: false, subscription_count: 0 }, 'subscription_count of b after its last subscriber left');
        await sameOnEveryNode(nodes, presenceInfo, { occupied: true, user_count: 2, subscription_count: 2 }, 'presence channel info after a leave');
      });

      it('tells subscribers the subscription_count of the whole cluster', async (t) => {
        const keep = opened(t);
        const channel = fresh('counted');
        const first = keep(await rawOn(n1));
        await rawSubscribed(first, channel);
        const countIs = (n: number) => (m: RawMessage) =>
          m.event === 'pusher_internal:subscription_count' && m.channel === channel && (dataOf(m) as { subscription_count: number }).subscription_count === n;
        await first.next(countIs(1));
        await rawSubscribed(keep(await rawOn(n2)), channel);
        await first.next(countIs(2));
        const third = keep(await rawOn(n3));
        await rawSubscribed(third, channel);
        await first.next(countIs(3));
        await third.next(countIs(3));
      });

      it('sends to a user on every node: native /send and the SDK sendToUser', async (t) => {
        const keep = opened(t);
        const user = fresh('sue');
        const native = keep(await nativeAs(n2, user));
        const pusher = keep(await rawOn(n3));
        await rawSignedIn(pusher, serverSdk(n3.server), { id: user });
        const stranger = keep(await nativeAs(n3, fresh('stranger')));
        await sameOnEveryNode([n1], (n) => infoOf(n, user).then((c) => c.length), 2, 'both sockets of the user visible from node 1');

        assert.deepEqual(await api(n1.server, 'POST', '/send', { token: TOKEN, query: { user, type: 'text' }, body: 'hello sue' }), { status: 200, json: { success: true } });
        await native.text('hello sue');
        const m = await pusher.event('message', `#server-to-user-${user}`);
        assert.equal(m.data, 'hello sue');

        await serverSdk(n1.server).sendToUser(user, 'notice', { n: 1 });
        assert.deepEqual(dataOf(await pusher.event('notice', `#server-to-user-${user}`)), { n: 1 });
        await stranger.sync();
        assert.deepEqual(stranger.deliveries, []);
      });

      it("terminates a user's connections on every node: SDK terminateUserConnections and native /disconnect", async (t) => {
        const keep = opened(t);
        const sdk = serverSdk(n1.server);
        const tom = fresh('tom');
        const [tom2, tom3] = [keep(await rawOn(n2)), keep(await rawOn(n3))];
        await rawSignedIn(tom2, sdk, { id: tom });
        await rawSignedIn(tom3, sdk, { id: tom });
        const tomNative = keep(await nativeAs(n3, tom));
        const bystander = keep(await rawOn(n2));
        await rawSignedIn(bystander, sdk, { id: fresh('bystander') });
        await sameOnEveryNode([n1], (n) => infoOf(n, tom).then((c) => c.length), 3, "tom's sockets visible from node 1");

        const reply = await signedRequest(n1.server, { path: `/users/${tom}/terminate_connections`, body: {} });
        assert.equal(reply.status, 200, reply.text);
        assert.equal(await tom2.closed, 4009);
        assert.equal(await tom3.closed, 4009);
        assert.equal(await tomNative.closed, 4009);
        await sync(bystander);
        assert.equal(bystander.closeCode, undefined);

        const dan = fresh('dan');
        const [dan2, dan3] = [keep(await nativeAs(n2, dan)), keep(await nativeAs(n3, dan))];
        await sameOnEveryNode([n1], (n) => infoOf(n, dan).then((c) => c.length), 2, "dan's sockets visible from node 1");
        assert.deepEqual(await api(n1.server, 'POST', '/disconnect', { token: TOKEN, query: { user: dan } }), { status: 200, json: { success: true, disconnected: 2 } });
        assert.equal(await dan2.closed, 4009);
        assert.equal(await dan3.closed, 4009);
        assert.deepEqual(await infoOf(n1, dan), []);
      });

      it("lists a user's connections on every node through /info on any node", async (t) => {
        const keep = opened(t);
        const user = fresh('ivy');
        keep(await nativeAs(n2, user, 'desk'));
        const pusher = keep(await rawOn(n3));
        await rawSignedIn(pusher, serverSdk(n3.server), { id: user });
        const [w2, w3] = [await workerOf(n2), await workerOf(n3)];
        assert.notEqual(w2, w3);
        const expected = [
          { worker: w2, user, protocol: 'native' },
          { worker: w3, user, protocol: 'pusher' },
        ].sort((a, b) => (a.worker < b.worker ? -1 : 1));
        for (const node of nodes) {
          const conns = await infoOf(node, user);
          assert.deepEqual(
            conns.map(({ worker, user: u, protocol }) => ({ worker, user: u, protocol })),
            expected,
            `/info on ${node.name}`,
          );
        }
      });

      it('delivers a burst of 10,000 messages published through node 1 to subscribers on nodes 2 and 3 exactly once and in order per publisher', { timeout: 45_000 }, async (t) => {
        const keep = opened(t);
        const LANES = 8;
        const REQUESTS = 125;
        const BATCH = 10; // 8 publishers × 125 batches × 10 events
        const base = fresh('burst');
        const channels = Array.from({ length: LANES }, (_, i) => `${base}-${i}`);
        const subscribers = [keep(await CountingSubscriber.connect(n2.port, APP.key)), keep(await CountingSubscriber.connect(n3.port, APP.key))];
        for (const s of subscribers) for (const channel of channels) await s.subscribe(channel);

        const agent = keepAliveAgent(LANES);
        t.after(() => agent.destroy());
        // Each publisher (lane) sends its batches one after another, so its own order is defined; the lanes run side by side.
        await Promise.all(
          channels.map(async (channel) => {
            for (let r = 0; r < REQUESTS; r++) {
              const batch = Array.from({ length: BATCH }, (_, k) => ({ channel, name: 'seq', data: String(r * BATCH + k) }));
              const reply = await signedRequest(n1.server, { path: '/batch_events', body: { batch }, agent });
              assert.equal(reply.status, 200, reply.text);
            }
            const reply = await signedRequest(n1.server, { path: '/events', body: { channel, name: 'end', data: 'end' }, agent });
            assert.equal(reply.status, 200, reply.text);
          }),
        );
        const expected = Array.from({ length: REQUESTS * BATCH }, (_, i) => String(i));
        for (const s of subscribers) {
          // 'end' follows each lane's last batch on the same channel: a duplicate would have come before it.
          await s.until(() => channels.every((c) => s.of(c, 'end').length > 0), 30_000);
          for (const channel of channels) {
            const seq = s.of(channel, 'seq');
            assert.equal(seq.length, expected.length, `${channel}: ${seq.length} messages`);
            assert.deepEqual(seq, expected, `${channel} in order`);
            assert.equal(s.of(channel, 'end').length, 1);
          }
          assert.equal(s.total, LANES * (REQUESTS * BATCH + 1));
        }
      });

      it("shares a cache channel's last event: published through node 1, it greets a subscriber on node 3", async (t) => {
        const keep = opened(t);
        const channel = fresh('cache-prices');
        await serverSdk(n1.server).trigger(channel, 'tick', { price: 42 });
        const raw = keep(await rawOn(n3));
        // The event travels to node 3 as any other; poll the subscription until node 3 has it cached.
        await eventually(async () => {
          const probe = await rawOn(n3);
          try {
            await rawSubscribed(probe, channel);
            const next = await probe.next((m) => m.channel === channel && m.event !== 'pusher_internal:subscription_succeeded');
            return next.event === 'tick';
          } finally {
            probe.close();
          }
        }, 'node 3 to hold the cached event');
        await rawSubscribed(raw, channel);
        const first = await raw.next((m) => m.channel === channel && m.event !== 'pusher_internal:subscription_succeeded');
        assert.equal(first.event, 'tick');
        assert.deepEqual(dataOf(first), { price: 42 });
      });

      it("counts an app's connection quota over the whole cluster (4004 on the third node)", async (t) => {
        const keep = opened(t);
        const path = `/app/${QUOTA_APP.key}?protocol=7&client=raw&version=1.0`;
        const a = keep(await RawClient.connect(n1.server, path));
        await a.socketId();
        const b = keep(await RawClient.connect(n2.server, path));
        await b.socketId();
        const quotaSdk = serverSdk(n3.server, QUOTA_APP);
        await eventually(async () => ((await restGet(quotaSdk, '/stats')) as { connections: number }).connections === 2, 'node 3 to count both connections');
        const c = keep(await RawClient.connect(n3.server, path));
        assert.equal(await c.closed, 4004);
        assert.deepEqual((await c.event('pusher:error')).data, { code: 4004, message: 'Application is over its connection quota' });
      });

      it('shares claims: one made through node 1 is taken once on node 2 and refused with MISSING_CLAIM on node 3', async (t) => {
        const keep = opened(t);
        const user = fresh('claimer');
        const made = await api(n1.server, 'POST', '/claim', { token: TOKEN, query: { user, session: 'tab' } });
        assert.equal(made.status, 200, JSON.stringify(made.json));
        const id = (made.json.claim as { id: string }).id;
        const c = keep(await connectNative(n2.server, `/ws?ack=1&claim=${encodeURIComponent(id)}`));
        const [conn] = await infoOf(n1, user);
        assert.equal(conn?.worker, await workerOf(n2));
        await c.sync();
        assert.deepEqual(await refusal(n3.server, `/ws?claim=${encodeURIComponent(id)}`), {
          status: 401,
          body: { success: false, error: 'Claim not found (or already used)', errorCode: 'MISSING_CLAIM' },
        });
      });
    });

    it('drops a SIGKILLed node within the node timeout: member_removed on the other nodes, its connections gone from counts and /info', { timeout: 30_000 }, async (t) => {
      const keep = opened(t);
      const nodes = await ownCluster(t, 3, { requestTimeoutMs: 3000 });
      const [n1, n2, n3] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
      const sdk = serverSdk(n1.server);
      const presence = `presence-${fresh('doomed')}`;
      const channel = fresh('doomed-public');
      const [w1, w2] = [keep(await rawOn(n1)), keep(await rawOn(n2))];
      await rawSubscribed(w1, presence, sdk, { user_id: 'w1' });
      await rawSubscribed(w2, presence, sdk, { user_id: 'w2' });
      const victim = keep(await rawOn(n3));
      await rawSignedIn(victim, sdk, { id: 'vic' });
      await rawSubscribed(victim, presence, sdk, { user_id: 'vic' });
      await rawSubscribed(victim, channel);
      const survivor = keep(await rawOn(n1));
      await rawSignedIn(survivor, sdk, { id: 'vic' });
      await rawSubscribed(survivor, channel);
      const live = [n1, n2];
      await sameOnEveryNode(nodes, (n) => usersOn(n, presence), ['vic', 'w1', 'w2'], 'users before the kill');
      await sameOnEveryNode(nodes, (n) => subscriptionCountOn(n, channel), { occupied: true, subscription_count: 2 }, 'subscription_count before the kill');
      await sameOnEveryNode(live, (n) => infoOf(n, 'vic').then((c) => c.length), 2, "vic's sockets before the kill");
      const survivorWorker = await workerOf(n1);

      const killedAt = Date.now();
      await n3.kill();
      const removed = memberEvent('pusher_internal:member_removed', presence, 'vic');
      for (const w of [w1, w2]) await w.next(removed, NODE_TIMEOUT_MS + 3000);
      const took = Date.now() - killedAt;
      assert.ok(took <= NODE_TIMEOUT_MS + 2 * HEARTBEAT_MS + 1000, `member_removed after ${took} ms (node timeout ${NODE_TIMEOUT_MS} ms)`);

      await sameOnEveryNode(live, (n) => usersOn(n, presence), ['w1', 'w2'], 'users after the kill');
      await sameOnEveryNode(live, (n) => restGet(serverSdk(n.server), `/channels/${presence}`, { info: 'user_count' }), { occupied: true, user_count: 2 }, 'user_count after the kill');
      await sameOnEveryNode(live, (n) => subscriptionCountOn(n, channel), { occupied: true, subscription_count: 1 }, 'subscription_count after the kill');
      for (const n of live) {
        const started = Date.now();
        const conns = await infoOf(n, 'vic');
        // The dead node is no longer asked, so /info does not wait out the request timeout for it.
        assert.ok(Date.now() - started < 2000, `/info on ${n.name} took ${Date.now() - started} ms`);
        assert.deepEqual(
          conns.map((c) => c.worker),
          [survivorWorker],
        );
      }
      for (const w of [w1, w2]) {
        await sync(w);
        assert.equal(count(w, removed), 1);
      }
    });

    it("reports the leaves a SIGKILLed node caused (channel_vacated, member_removed) once, from one surviving node", { timeout: 30_000 }, async (t) => {
      const hooks = await startReceiver();
      t.after(() => hooks.close());
      const LEAVE_DELAY_MS = 300;
      const config = writeConfig(makeTmpDir('cluster-webhooks'), {
        apps: APPS.map((app, i) => (i === 0 ? { ...app, webhooks: [{ url: hooks.url }] } : app)),
        webhookBatchMs: 10,
        webhookLeaveDelayMs: LEAVE_DELAY_MS,
      });
      const keep = opened(t);
      const nodes = await ownCluster(t, 3, { configFile: config });
      const [n1, , n3] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
      const sdk = serverSdk(n1.server);
      const presence = `presence-${fresh('dying')}`;
      const lonely = fresh('dying-alone');
      const stays = keep(await rawOn(n1));
      await rawSubscribed(stays, presence, sdk, { user_id: 'stays' });
      const victim = keep(await rawOn(n3));
      await rawSubscribed(victim, presence, sdk, { user_id: 'goes' });
      await rawSubscribed(victim, lonely);
      await hooks.waitFor((e) => e.name === 'member_added' && e.user_id === 'goes', 5000);
      await hooks.waitFor((e) => e.name === 'channel_occupied' && e.channel === lonely, 5000);

      await n3.kill();
      const wait = NODE_TIMEOUT_MS + 2 * HEARTBEAT_MS + LEAVE_DELAY_MS + 3000;
      await hooks.waitFor((e) => e.name === 'member_removed' && e.user_id === 'goes', wait);
      await hooks.waitFor((e) => e.name === 'channel_vacated' && e.channel === lonely, wait);
      // Every survivor dropped the node; a second report would come within a heartbeat or two.
      await new Promise((resolve) => setTimeout(resolve, 4 * HEARTBEAT_MS + LEAVE_DELAY_MS));
      assert.deepEqual(
        hooks.eventsOf(presence).filter((e) => e.name === 'member_removed'),
        [{ name: 'member_removed', channel: presence, user_id: 'goes' }],
      );
      assert.deepEqual(hooks.eventsOf(lonely), [
        { name: 'channel_occupied', channel: lonely },
        { name: 'channel_vacated', channel: lonely },
      ]);
      // The presence channel still has "stays": it was not vacated.
      assert.equal(hooks.eventsOf(presence).filter((e) => e.name === 'channel_vacated').length, 0);
    });

    it('survives the engine stopping and starting mid-traffic: local delivery goes on, /ready says 503 then 200, delivery and presence come back', { timeout: 45_000 }, async (t) => {
      const keep = opened(t);
      const engineOfOwn = await engine.throwaway();
      let nodes: SwitchboardNode[] = [];
      // Nodes first, then the engine: a node shutting down with its engine gone would wait out its timeouts.
      t.after(async () => {
        await stopNodes(nodes);
        await engineOfOwn.stop();
      });
      nodes = await startNodes(3, options(engineOfOwn.env));
      const [n1, n2, n3] = nodes as [SwitchboardNode, SwitchboardNode, SwitchboardNode];
      const sdk = serverSdk(n1.server);
      const channel = fresh('ticks');
      const presence = `presence-${fresh('outage')}`;
      const local = keep(await CountingSubscriber.connect(n1.port, APP.key));
      const remote = keep(await CountingSubscriber.connect(n2.port, APP.key));
      await local.subscribe(channel);
      await remote.subscribe(channel);
      const w1 = keep(await rawOn(n1));
      await rawSubscribed(w1, presence, sdk, { user_id: 'w1' });
      const stay = keep(await rawOn(n3));
      await rawSubscribed(stay, presence, sdk, { user_id: 'stay' });
      await sameOnEveryNode(nodes, (n) => usersOn(n, presence), ['stay', 'w1'], 'users before the outage');

      // Traffic: numbered events published one after another through node 1, all along.
      let sent = 0;
      let stopTraffic = false;
      const traffic = (async () => {
        while (!stopTraffic) {
          await sdk.trigger(channel, 'tick', String(sent));
          sent += 1;
        }
      })();
      t.after(async () => {
        stopTraffic = true;
        await traffic.catch(() => undefined);
      });
      const ticks = (s: CountingSubscriber): number[] => s.of(channel, 'tick').map(Number);
      await remote.until(() => ticks(remote).length >= 5, 5000);

      await engineOfOwn.stop();
      await sameOnEveryNode(nodes, async (n) => {
          const reply = await n.ready();
          return { status: reply.status, body: reply.json };
        }, { status: 503, body: { ready: false, serving: true, cluster: false } }, '/ready while the engine is down', 10_000);
      // Still serving local traffic: node 1's publishes reach its own subscriber.
      const whileDown = sent;
      await local.until(() => ticks(local).some((n) => n > whileDown), 5000);
      // Presence changes while the nodes cannot tell each other.
      const late = keep(await rawOn(n2));
      await rawSubscribed(late, presence, sdk, { user_id: 'late' });
      stay.close();
      await eventually(async () => isDeepStrictEqual(await usersOn(n3, presence), ['w1']), 'node 3 to see stay leave');
      await new Promise((resolve) => setTimeout(resolve, 500)); // the engine stays down a moment longer

      await engineOfOwn.start();
      await sameOnEveryNode(nodes, async (n) => (await n.ready()).status, 200, '/ready after the engine is back', 20_000);
      const sentWhenBack = sent;
      await remote.until(() => ticks(remote).some((n) => n >= sentWhenBack), 10_000);
      stopTraffic = true;
      await traffic;

      // Node 1's own subscriber got every tick, in order; the remote one lost some during the outage but got none twice or out of order.
      await local.until(() => ticks(local).length === sent, 5000);
      assert.deepEqual(ticks(local), Array.from({ length: sent }, (_, i) => i));
      const seen = ticks(remote);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > (seen[i - 1]), `tick ${seen[i]} after ${seen[i - 1]}`);

      // Presence rebuilt from every node's snapshot: late joined, stay left.
      await sameOnEveryNode(nodes, (n) => usersOn(n, presence), ['late', 'w1'], 'users after the engine came back', 10_000);
      await w1.next(memberEvent('pusher_internal:member_added', presence, 'late'));
      const stayEvents = w1.messages.filter((m) => m.channel === presence && (dataOf(m) as { user_id?: string }).user_id === 'stay');
      assert.equal(stayEvents.at(-1)?.event, 'pusher_internal:member_removed');

      // Cross-node delivery in every direction again.
      const after = keep(await rawOn(n3));
      await rawSubscribed(after, channel);
      await serverSdk(n2.server).trigger(channel, 'back', {});
      await local.until(() => local.of(channel, 'back').length === 1, 5000);
      await after.event('back', channel);
    });

    it('shows a node that joins late the presence members already on other nodes', async (t) => {
      const keep = opened(t);
      const opts = options((shared as { env: EngineEnv }).env);
      const early = await startNodes(2, opts);
      t.after(() => stopNodes(early));
      const [n1, n2] = early as [SwitchboardNode, SwitchboardNode];
      const sdk = serverSdk(n1.server);
      const presence = `presence-${fresh('late')}`;
      const alice = keep(await rawOn(n1));
      await rawSubscribed(alice, presence, sdk, { user_id: 'alice', user_info: { name: 'Alice' } });
      const bob = keep(await rawOn(n2));
      await rawSubscribed(bob, presence, sdk, { user_id: 'bob' });
      await sameOnEveryNode(early, (n) => usersOn(n, presence), ['alice', 'bob'], 'users on the early nodes');

      const n3 = await startNode('late-node', opts);
      t.after(() => n3.stop());
      const carol = keep(await rawOn(n3));
      const joined = await rawSubscribed(carol, presence, sdk, { user_id: 'carol' });
      assert.deepEqual(presenceOf(joined), { count: 3, ids: ['alice', 'bob', 'carol'], hash: { alice: { name: 'Alice' }, bob: null, carol: null } });
      await alice.next(memberEvent('pusher_internal:member_added', presence, 'carol'));
      await sameOnEveryNode([n1, n2, n3], (n) => usersOn(n, presence), ['alice', 'bob', 'carol'], 'users with the late node');
    });

    describe('roles', () => {
      let ws: SwitchboardNode;
      let apiNode: SwitchboardNode;
      before(async () => {
        const opts = options((shared as { env: EngineEnv }).env);
        [ws, apiNode] = await Promise.all([startNode('websocket-node', { ...opts, role: 'websocket' }), startNode('api-node', { ...opts, role: 'api' })]);
      });
      after(() => stopNodes([ws, apiNode].filter(Boolean)));

      it('a websocket-only node refuses the Pusher REST API and the native API with 404 but answers /ready', async () => {
        const rest = await signedRequest(ws.server, { path: '/channels' });
        assert.equal(rest.status, 404);
        assert.deepEqual(rest.json, { error: 'This node serves WebSockets only' });
        const native = await api(ws.server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'x', data: 'y' } });
        assert.deepEqual(native, { status: 404, json: { error: 'This node serves WebSockets only' } });
        assert.equal((await ws.ready()).status, 200);
      });

      it('an api-only node refuses WebSocket upgrades with 404', async () => {
        assert.equal((await refusal(apiNode.server, `/app/${APP.key}?protocol=7&client=raw&version=1.0`)).status, 404);
        assert.equal((await refusal(apiNode.server, '/ws')).status, 404);
        assert.equal((await send(apiNode.server, 'GET', '/ready')).status, 200);
      });

      it("an api-only node's /broadcast and REST trigger reach clients on the websocket node", async (t) => {
        const keep = opened(t);
        const channel = fresh('split');
        const native = keep(await connectNative(ws.server, '/ws?ack=1'));
        await subscribeNative(native, channel);
        const pusher = keep(await rawOn(ws));
        await rawSubscribed(pusher, channel);
        assert.deepEqual(await api(apiNode.server, 'POST', '/broadcast', { token: TOKEN, json: { channel, data: 'from the api node' } }), { status: 200, json: { success: true } });
        await native.text('from the api node');
        assert.equal((await pusher.event('message', channel)).data, 'from the api node');
        await serverSdk(apiNode.server).trigger(channel, 'rest', { ok: true });
        assert.deepEqual(dataOf(await pusher.event('rest', channel)), { ok: true });
      });
    });
  });
}
