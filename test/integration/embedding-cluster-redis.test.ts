import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type OpenVerdict, type Switchboard, type SwitchboardHooks } from '../../src/index.js';
import { redisNodeConfig, sharedRedisMissing } from '../helpers/cluster.js';
import { connected, pusherClient, RawClient, within, subscribed, type PusherJs } from '../helpers/clients.js';
import { PROTOCOL_QUERY } from '../helpers/raw-pusher.js';
import { closeAll, connectNative, makeJwt, nowSeconds, subscribeNative, type NativeClient } from '../helpers/native.js';
import { APP } from '../helpers/server.js';
import { pusherSignedIn } from '../helpers/users.js';
import { eventually } from '../helpers/wait.js';

const JWT_SECRET = 'cluster-hooks-jwt-secret-42';
const missing = await sharedRedisMissing();
if (missing) console.log(`# skipping embedding tests on Redis: ${missing}`);

/** A connectionOpened call held until the test answers it. */
interface Gate {
  readonly id: string;
  answer(verdict: OpenVerdict): void;
}

/**
 * Hooks that say which node ran them, so a test can tell where each hook ran. A connection
 * whose URL has `gate=1` waits in connectionOpened until the test answers it.
 */
function nodeHooks(node: string, ran: string[], gates: Gate[]): SwitchboardHooks {
  return {
    connectionOpened({ connection, url }) {
      ran.push(`${node}:opened:${connection.id}`);
      connection.setMetadata({ openedOn: node });
      if (url.includes('gate=1')) return new Promise<OpenVerdict>((resolve) => gates.push({ id: connection.id, answer: resolve }));
      return undefined;
    },
    connectionClosed({ connection, code }) {
      ran.push(`${node}:closed:${connection.id}:${code}`);
    },
    subscribed({ connection, channel }) {
      ran.push(`${node}:subscribed:${connection.id}:${channel}`);
    },
    unsubscribed({ connection, channel }) {
      ran.push(`${node}:unsubscribed:${connection.id}:${channel}`);
    },
    signedIn({ connection, user }) {
      ran.push(`${node}:signedIn:${connection.id}:${user.id}`);
    },
    clientEvent({ connection, data }) {
      ran.push(`${node}:clientEvent:${connection.id}`);
      return { data: { ...(data as object), checkedOn: node, meta: connection.metadata } };
    },
    publish({ connection, data }) {
      ran.push(`${node}:publish:${connection.id}`);
      return { data: { said: data, checkedOn: node, meta: connection.metadata } };
    },
  };
}

/** Two in-process nodes on the machine's Redis, each with its own hooks. */
describe('embedding API across two nodes on Redis', { skip: missing }, () => {
  let a: Switchboard;
  let b: Switchboard;
  const ran: string[] = [];
  const gates: Gate[] = [];
  const natives: NativeClient[] = [];
  const raws: RawClient[] = [];
  const pushers: PusherJs[] = [];
  const native = async (node: Switchboard, path: string): Promise<NativeClient> => {
    const c = await connectNative(node, path);
    natives.push(c);
    return c;
  };
  const pusher = async (node: Switchboard, opts: Parameters<typeof pusherClient>[1] = {}): Promise<PusherJs> => {
    const c = pusherClient(node, opts);
    pushers.push(c);
    await connected(c);
    return c;
  };
  /** The id of the one native connection on `node` whose user is `user`. */
  const idOn = (node: Switchboard, user: string): string => {
    const [conn] = node.hub.findConnections(APP.id, { user });
    assert.ok(conn, `no connection of ${user}`);
    return conn.id;
  };

  before(async () => {
    const config = redisNodeConfig('embedding', [{ ...APP, jwtSecret: JWT_SECRET, enableClientMessages: true, clientPublish: true }]);
    a = await createServer(config, { hooks: nodeHooks('A', ran, gates) });
    b = await createServer(config, { hooks: nodeHooks('B', ran, gates) });
    // Each node has heard of the other once each counts the other's connection (cluster requests then ask both).
    await native(a, '/ws');
    await native(b, '/ws');
    await eventually(() => a.metrics().connections === 2 && b.metrics().connections === 2, 'each node counts both connections');
  });
  after(async () => {
    for (const g of gates) g.answer(undefined);
    await closeAll(natives);
    for (const r of raws) r.close();
    for (const p of pushers) p.disconnect();
    await a.close();
    await b.close();
  });

  const jwtPath = async (sub: string, sid?: string): Promise<string> =>
    `/ws?format=envelope&jwt=${await makeJwt(JWT_SECRET, { sub, exp: nowSeconds() + 60, ...(sid ? { sid } : {}) })}`;

  it('runs each hook on the node holding the connection; the changed message reaches the other node’s clients', async () => {
    const onB = await pusher(b);
    const onA = await pusher(a);
    await subscribed(onB, 'private-across');
    await subscribed(onA, 'private-across');
    const got = new Promise((resolve) => onA.channel('private-across').bind('client-hi', resolve));
    onB.channel('private-across').trigger('client-hi', { text: 'hello' });
    assert.deepEqual(await within(got, 'pusher-js event'), { text: 'hello', checkedOn: 'B', meta: { openedOn: 'B' } });
    assert.ok(ran.includes(`B:opened:${onB.connection.socket_id}`));
    assert.ok(ran.includes(`B:clientEvent:${onB.connection.socket_id}`));
    assert.ok(!ran.some((r) => r.startsWith('A:') && r.endsWith(onB.connection.socket_id)));

    const sender = await native(b, '/ws?format=envelope');
    const reader = await native(a, '/ws?format=envelope');
    await subscribeNative(sender, 'native-across');
    await subscribeNative(reader, 'native-across');
    sender.send({ action: 'publish', channel: 'native-across', data: 'hey' });
    const m = await reader.message((x) => x.event === 'message');
    assert.deepEqual(m.data, { said: 'hey', checkedOn: 'B', meta: { openedOn: 'B' } });
  });

  it('subscribed, unsubscribed, signedIn and connectionClosed run on the node holding the connection, also when another node disconnects it', async () => {
    const pj = await pusher(b, { user: { id: 'erin' } });
    const id = pj.connection.socket_id;
    await subscribed(pj, 'notes-across');
    await pusherSignedIn(pj, 'erin');
    pj.unsubscribe('notes-across');
    await eventually(() => ran.includes(`B:unsubscribed:${id}:notes-across`), 'unsubscribed on B');
    const n = await native(b, await jwtPath('frank'));
    const nId = idOn(b, 'frank');
    await subscribeNative(n, 'notes-across');
    await eventually(() => ran.includes(`B:subscribed:${nId}:notes-across`), 'native subscribed on B');
    assert.equal(await a.disconnect({ id: nId }), 1);
    assert.equal(await within(n.closed, 'native close'), 4009);
    await eventually(() => ran.includes(`B:closed:${nId}:4009`), 'connectionClosed on B');
    for (const [what, who] of [['subscribed', id], ['signedIn', id], ['unsubscribed', id], ['subscribed', nId], ['signedIn', nId], ['closed', nId]] as const) {
      assert.ok(ran.some((r) => r.startsWith(`B:${what}:${who}`)), `B ran ${what} for ${who}`);
    }
    assert.ok(!ran.some((r) => r.startsWith('A:') && (r.includes(id) || r.includes(nId))), 'node A ran no hook of them');
  });

  it('a connection whose connectionOpened is still running gets what another node sent it only after pusher:connection_established', async () => {
    const witness = await native(b, '/ws');
    const before = gates.length;
    const c = await RawClient.connect(b, `/app/${APP.key}?${PROTOCOL_QUERY}&gate=1`);
    raws.push(c);
    const gate = await eventually(() => gates.length > before && gates[before], 'the gated connectionOpened');
    a.sendToConnection(gate.id, 'direct from A', { event: 'direct' });
    a.broadcastAll('to all from A', { event: 'notice' });
    await witness.text('to all from A');
    gate.answer(undefined);
    await c.event('notice');
    await c.event('direct');
    assert.equal(c.messages[0]?.event, 'pusher:connection_established');
    assert.equal(await c.socketId(), gate.id);
    assert.deepEqual(c.messages.slice(1).map((m) => m.event).sort(), ['direct', 'notice']);
  });

  it('broadcastAll from one node reaches every connection on both nodes (pusher-js and native)', async () => {
    const pjB = await pusher(b);
    const nB = await native(b, '/ws');
    const nA = await native(a, '/ws');
    const got = new Promise((resolve) => pjB.bind('notice', resolve));
    a.broadcastAll('to everyone', { event: 'notice' });
    assert.equal(await within(got, 'pusher-js event'), 'to everyone');
    await nB.text('to everyone');
    await nA.text('to everyone');
  });

  it('sendToConnection, sendToUser and sendToUser({ session }) from one node reach clients on the other', async () => {
    const phone = await native(b, await jwtPath('carol', 'phone'));
    const desk = await native(b, await jwtPath('carol', 'desk'));
    const pj = await pusher(b, { user: { id: 'carol' } });
    await pusherSignedIn(pj, 'carol');
    const toUser = new Promise((resolve) => pj.user.bind('ping', resolve));
    a.sendToUser('carol', 'all of carol', { event: 'ping' });
    assert.equal(await within(toUser, 'pusher-js user event'), 'all of carol');
    await phone.message((m) => m.data === 'all of carol');
    await desk.message((m) => m.data === 'all of carol');

    a.sendToUser('carol', 'phone only', { session: 'phone' });
    await phone.message((m) => m.data === 'phone only');
    const deskId = (await a.connections({ user: 'carol', session: 'desk' }))[0]?.id;
    assert.ok(deskId);
    a.sendToConnection(deskId, 'desk by id');
    await desk.message((m) => m.data === 'desk by id');
    await phone.sync();
    await desk.sync();
    assert.ok(!desk.json.some((m) => m.data === 'phone only'));
    assert.ok(!phone.json.some((m) => m.data === 'desk by id'));
  });

  it('connection() and setMetadata() from one node read and change a connection on the other; its hooks see the change', async () => {
    const dave = await native(b, await jwtPath('dave'));
    const id = idOn(b, 'dave');
    assert.deepEqual((await a.connection(id))?.metadata, { openedOn: 'B' });
    assert.equal((await a.connection(id))?.node, b.hub.nodeId);
    assert.equal(await a.setMetadata(id, { openedOn: 'B', flagged: true }), true);
    assert.deepEqual((await a.connection(id))?.metadata, { openedOn: 'B', flagged: true });
    const reader = await native(a, '/ws?format=envelope');
    await subscribeNative(dave, 'meta-across');
    await subscribeNative(reader, 'meta-across');
    dave.send({ action: 'publish', channel: 'meta-across', data: 'x' });
    const m = await reader.message((x) => x.event === 'message');
    assert.deepEqual(m.data, { said: 'x', checkedOn: 'B', meta: { openedOn: 'B', flagged: true } });
  });

  it('metrics() counts the app’s connections on both nodes', async () => {
    await native(b, '/ws');
    const total = [...a.hub.connections(APP.id)].length + [...b.hub.connections(APP.id)].length;
    await eventually(() => a.metrics().connections === total && b.metrics().connections === total, 'both nodes count every connection');
    assert.equal(a.metrics().node, a.hub.nodeId);
  });
});
