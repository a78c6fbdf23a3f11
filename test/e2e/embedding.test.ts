import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Switchboard } from '../../src/index.js';
import { connected, pusherClient, RawClient, subscribed, type PusherJs } from '../helpers/clients.js';
import { closeAll, connectNative, makeJwt, nowSeconds, subscribeNative, type NativeClient } from '../helpers/native.js';
import { APP } from '../helpers/server.js';
import { pusherSignedIn } from '../helpers/users.js';

const JWT_SECRET = 'embedding-jwt-secret-0987';
const SECOND = { id: 'second-id', key: 'second-key', secret: 'second-secret' } as const;

/** The in-process API a Node application gets (the FrankenPHP hub's broadcast()). */
describe('embedding: createServer() in the host process', () => {
  let sb: Switchboard;
  const natives: NativeClient[] = [];
  const pushers: PusherJs[] = [];
  const native = async (path = '/ws?ack=1'): Promise<NativeClient> => {
    const c = await connectNative(sb, path);
    natives.push(c);
    return c;
  };
  const nativeAs = async (sub: string, sid?: string, extra = ''): Promise<NativeClient> =>
    native(`/ws?ack=1&jwt=${await makeJwt(JWT_SECRET, { sub, exp: nowSeconds() + 60, ...(sid ? { sid } : {}) })}${extra}`);
  const pusher = async (opts: Parameters<typeof pusherClient>[1] = {}): Promise<PusherJs> => {
    const client = pusherClient(sb, opts);
    pushers.push(client);
    await connected(client);
    return client;
  };

  before(async () => {
    sb = await createServer({
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      apps: [{ ...APP, jwtSecret: JWT_SECRET }, { ...SECOND }],
    });
  });
  after(async () => {
    await closeAll(natives);
    for (const p of pushers) p.disconnect();
    await sb.close();
  });

  it('reports the bound port and a loopback URL', () => {
    assert.ok(sb.port > 0);
    assert.equal(sb.url, `http://127.0.0.1:${sb.port}`);
  });

  it('broadcast(channel, data) reaches native clients as the payload and pusher-js as event "message"', async () => {
    const raw = await native();
    const pj = await pusher();
    await subscribeNative(raw, 'embedded');
    await subscribed(pj, 'embedded');
    const got = new Promise((resolve) => pj.channel('embedded').bind('message', resolve));
    sb.broadcast('embedded', 'from the host');
    await raw.text('from the host');
    assert.equal(await got, 'from the host');
  });

  it('broadcast(..., {event}) names the event', async () => {
    const env = await native('/ws?format=envelope');
    const pj = await pusher();
    await subscribeNative(env, 'named');
    await subscribed(pj, 'named');
    const got = new Promise((resolve) => pj.channel('named').bind('price', resolve));
    sb.broadcast('named', '42', { event: 'price' });
    await env.text('{"channel":"named","event":"price","data":"42"}');
    assert.equal(await got, 42);
  });

  it('broadcast(..., {appId}) publishes to that app only; an unknown app id throws', async () => {
    const first = await native();
    const second = await native(`/ws/${SECOND.key}?ack=1`);
    await subscribeNative(first, 'per-app');
    await subscribeNative(second, 'per-app');
    sb.broadcast('per-app', 'second only', { appId: SECOND.id });
    await second.text('second only');
    await first.sync();
    assert.deepEqual(first.deliveries, []);
    assert.throws(() => sb.broadcast('per-app', 'x', { appId: 'nope' }), /unknown app id: nope/);
  });

  it("sendToUser() reaches the user's native sockets (text and binary frames) and signed-in pusher-js sockets", async () => {
    const a = await nativeAs('host-user');
    const b = await nativeAs('host-user');
    const pj = await pusher({ user: { id: 'host-user' } });
    await pusherSignedIn(pj, 'host-user');
    const got: unknown[] = [];
    const two = new Promise<void>((resolve) =>
      pj.user.bind('message', (d: unknown) => {
        got.push(d);
        if (got.length === 2) resolve();
      }),
    );
    sb.sendToUser('host-user', 'hi there');
    const bytes = Buffer.from([9, 8, 7]);
    sb.sendToUser('host-user', bytes);
    for (const c of [a, b]) {
      await c.text('hi there');
      const bin = await c.frame((f) => f.binary);
      assert.deepEqual(bin.data, bytes);
    }
    await two;
    assert.deepEqual(got, ['hi there', bytes.toString('base64')]);
  });

  it('sendToUser(..., {session, event}) reaches only that session, with that event', async () => {
    const phone = await nativeAs('sessions', 'phone', '&format=envelope');
    const desk = await nativeAs('sessions', 'desk', '&format=envelope');
    sb.sendToUser('sessions', 'ring', { session: 'phone', event: 'call' });
    assert.deepEqual(await phone.message((m) => m.event === 'call'), { channel: '#server-to-user-sessions', event: 'call', data: 'ring' });
    await desk.sync();
    assert.deepEqual(desk.deliveries, []);
  });

  it('sendToConnection() reaches one connection', async () => {
    const target = await nativeAs('conn-user', 'one');
    const other = await nativeAs('conn-user', 'two');
    const [conn] = sb.hub.findConnections(APP.id, { user: 'conn-user', session: 'one' });
    assert.ok(conn);
    sb.sendToConnection(conn.id, 'only you');
    await target.text('only you');
    await other.sync();
    assert.deepEqual(other.deliveries, []);
  });

  it('disconnect({user}) and disconnect({id}) close connections and return how many', async () => {
    const a = await nativeAs('leaver', 'a');
    const b = await nativeAs('leaver', 'b');
    const raw = await RawClient.connect(sb);
    const id = await raw.socketId();
    assert.equal(await sb.disconnect({ user: 'leaver', session: 'a' }), 1);
    assert.equal(await a.closed, 4009);
    assert.equal(await sb.disconnect({ user: 'leaver' }), 1);
    assert.equal(await b.closed, 4009);
    assert.equal(await sb.disconnect({ id }), 1);
    assert.equal(await raw.closed, 4009);
    assert.equal(await sb.disconnect({ user: 'nobody' }), 0);
  });
});

describe('embedding: close()', () => {
  it('closes native clients with 1001 and Pusher clients with 4200, then stops listening', async () => {
    const sb = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent' });
    const nat = await connectNative(sb, '/ws');
    const raw = await RawClient.connect(sb);
    await raw.socketId();
    const closing = sb.close();
    assert.equal(sb.close(), closing, 'close() is idempotent');
    assert.equal(await nat.closed, 1001);
    assert.equal(nat.closeReason, 'Server is restarting, reconnect');
    assert.equal(await raw.closed, 4200);
    await closing;
    await assert.rejects(fetch(`${sb.url}/up`));
  });
});
