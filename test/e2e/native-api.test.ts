import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { api, closeAll, connectNative, makeJwt, nowSeconds, subscribeNative, type NativeClient } from '../helpers/native.js';
import { md5Hex, pusherSignature } from '../helpers/signed-request.js';
import { APP, startServer } from '../helpers/server.js';

const TOKEN = 'native-api-token-0001';
const OTHER_TOKEN = 'native-api-token-0002';
const JWT_SECRET = 'native-api-jwt-secret-77';
const CLAIM_TTL = 45;

type Conn = { id: string; worker: string; lastPing: number; user?: string; session?: string; protocol: string };
type ClaimInfo = { id: string; expiration: number; user: string; session?: string };

describe('native HTTP API', () => {
  let server: Switchboard;
  const clients: NativeClient[] = [];
  let users = 0;

  const connect = async (path = '/ws?ack=1'): Promise<NativeClient> => {
    const c = await connectNative(server, path);
    clients.push(c);
    return c;
  };
  /** Connects as `user` (JWT) and returns the client. */
  const connectAs = async (user: string, session?: string, extra = ''): Promise<NativeClient> => {
    const token = await makeJwt(JWT_SECRET, { sub: user, exp: nowSeconds() + 60, ...(session ? { sid: session } : {}) });
    return connect(`/ws?ack=1&jwt=${token}${extra}`);
  };
  const freshUser = (): string => `user-${++users}`;
  const infoOf = async (query: Record<string, string>): Promise<{ connections: Conn[]; claims: ClaimInfo[] }> => {
    const reply = await api(server, 'GET', '/info', { token: TOKEN, query });
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.equal(reply.json.success, true);
    return reply.json as unknown as { connections: Conn[]; claims: ClaimInfo[] };
  };
  const failure = (status: number, errorCode: string, error: string): { status: number; json: Record<string, unknown> } => ({
    status,
    json: { success: false, error, errorCode },
  });

  before(async () => {
    server = await startServer({
      apps: [
        { ...APP, apiToken: TOKEN, jwtSecret: JWT_SECRET, claimTtlSeconds: CLAIM_TTL, maxEventDataBytes: 2048, maxEventChannels: 3 },
        { id: 'other-id', key: 'other-key', secret: 'other-secret', apiToken: OTHER_TOKEN },
      ],
    });
  });
  after(async () => {
    await closeAll(clients);
    await server.close();
  });

  describe('authentication', () => {
    const routes: Array<['GET' | 'POST', string]> = [
      ['POST', '/broadcast'],
      ['POST', '/internal/broadcast'],
      ['POST', '/send'],
      ['POST', '/disconnect'],
      ['GET', '/info'],
      ['POST', '/claim'],
    ];

    it('refuses every route without credentials with 401 INVALID_AUTHORIZATION', async () => {
      for (const [method, path] of routes) {
        assert.deepEqual(
          await api(server, method, path, { query: { user: 'x', channel: 'c', message: 'm', type: 'text' } }),
          failure(401, 'INVALID_AUTHORIZATION', 'Give an API token (Authorization: Bearer or ?token=) or a Pusher signature'),
          `${method} ${path}`,
        );
      }
    });

    it('refuses a wrong token, in the header or the query, with 401 INVALID_AUTHORIZATION', async () => {
      const expected = failure(401, 'INVALID_AUTHORIZATION', 'Invalid API token');
      assert.deepEqual(await api(server, 'GET', '/info', { token: 'not-the-token-at-all', query: { user: 'x' } }), expected);
      assert.deepEqual(await api(server, 'GET', '/info', { token: 'not-the-token-at-all', tokenInQuery: true, query: { user: 'x' } }), expected);
    });

    it('accepts the token as ?token= (dSock) as well as Authorization: Bearer', async () => {
      const c = await connect();
      await subscribeNative(c, 'tok');
      assert.deepEqual(await api(server, 'POST', '/broadcast', { token: TOKEN, tokenInQuery: true, json: { channel: 'tok', data: 'q' } }), {
        status: 200,
        json: { success: true },
      });
      await c.text('q');
    });

    it("scopes a token to its app: another app's token does not reach this app's users", async () => {
      const user = freshUser();
      const c = await connectAs(user);
      const reply = await api(server, 'POST', '/send', { token: OTHER_TOKEN, query: { user, type: 'text' }, body: 'wrong app' });
      assert.deepEqual(reply, { status: 200, json: { success: true } });
      assert.deepEqual((await api(server, 'GET', '/info', { token: OTHER_TOKEN, query: { user } })).json, { success: true, connections: [], claims: [] });
      await api(server, 'POST', '/send', { token: TOKEN, query: { user, type: 'text' }, body: 'right app' });
      await c.text('right app');
      assert.deepEqual(c.deliveries.map((d) => d.text), ['right app']);
    });

    const signed = (method: string, path: string, body: string, secret: string = APP.secret): string => {
      const params = new Map<string, string>([
        ['auth_key', APP.key],
        ['auth_timestamp', String(nowSeconds())],
        ['auth_version', '1.0'],
        ['body_md5', md5Hex(body)],
      ]);
      params.set('auth_signature', pusherSignature(secret, method, path, params));
      return `${path}?${new URLSearchParams([...params]).toString()}`;
    };

    it('accepts a Pusher signature (auth_key, auth_timestamp, body_md5, auth_signature)', async () => {
      const c = await connect();
      await subscribeNative(c, 'signed');
      const body = JSON.stringify({ channel: 'signed', data: 'by signature' });
      const reply = await api(server, 'POST', signed('POST', '/broadcast', body), { body, headers: { 'content-type': 'application/json' } });
      assert.deepEqual(reply, { status: 200, json: { success: true } });
      await c.text('by signature');
    });

    it('refuses a bad Pusher signature and an unknown auth_key with INVALID_AUTHORIZATION', async () => {
      const body = JSON.stringify({ channel: 'signed', data: 'forged' });
      const forged = await api(server, 'POST', signed('POST', '/broadcast', body, 'wrong-secret'), { body, headers: { 'content-type': 'application/json' } });
      assert.equal(forged.status, 401);
      assert.equal(forged.json.errorCode, 'INVALID_AUTHORIZATION');
      assert.deepEqual(await api(server, 'POST', '/broadcast?auth_key=nobody', { json: { channel: 'c', data: 'x' } }), failure(401, 'INVALID_AUTHORIZATION', 'Unknown auth_key'));
    });
  });

  describe('POST /broadcast', () => {
    it("takes cadsock's form fields channel and message on /broadcast and /internal/broadcast", async () => {
      const c = await connect();
      await subscribeNative(c, 'form');
      for (const path of ['/broadcast', '/internal/broadcast']) {
        const reply = await api(server, 'POST', path, { token: TOKEN, form: { channel: 'form', message: `via ${path}` } });
        assert.deepEqual(reply, { status: 200, json: { success: true } });
      }
      await c.until(() => c.deliveries.length === 2);
      assert.deepEqual(c.deliveries.map((d) => d.text), ['via /broadcast', 'via /internal/broadcast']);
    });

    it('takes JSON with a channels list and an event', async () => {
      const a = await connect('/ws?format=envelope');
      const b = await connect('/ws?format=envelope');
      await subscribeNative(a, 'multi-a');
      await subscribeNative(b, 'multi-b');
      await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channels: ['multi-a', 'multi-b'], event: 'tick', data: { n: 1 } } });
      assert.deepEqual(await a.message((m) => m.event === 'tick'), { channel: 'multi-a', event: 'tick', data: { n: 1 } });
      assert.deepEqual(await b.message((m) => m.event === 'tick'), { channel: 'multi-b', event: 'tick', data: { n: 1 } });
    });

    it('skips the connection named by socket_id', async () => {
      const user = freshUser();
      const skipped = await connectAs(user);
      const other = await connect();
      await subscribeNative(skipped, 'except');
      await subscribeNative(other, 'except');
      const [conn] = (await infoOf({ user })).connections;
      assert.ok(conn);
      await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'except', data: 'not to the sender', socket_id: conn.id } });
      await other.text('not to the sender');
      await skipped.sync();
      assert.deepEqual(skipped.deliveries, []);
    });

    it('refuses bad broadcasts with a code and delivers nothing', async () => {
      const c = await connect();
      await subscribeNative(c, 'strict');
      const cases: Array<[Parameters<typeof api>[3], number, string]> = [
        [{ json: { data: 'x' } }, 400, 'MISSING_CHANNEL'],
        [{ json: { channel: 'bad\u0000name', data: 'x' } }, 400, 'INVALID_CHANNEL'],
        [{ json: { channel: '#server-to-user-x', data: 'x' } }, 400, 'INVALID_CHANNEL'],
        [{ json: { channels: ['a', 'b', 'c', 'd'], data: 'x' } }, 400, 'TOO_MANY_CHANNELS'],
        [{ json: { channel: 'strict' } }, 400, 'MISSING_MESSAGE'],
        [{ json: { channel: 'strict', data: 'x'.repeat(2049) } }, 413, 'MESSAGE_TOO_LARGE'],
        [{ json: { channel: 'strict', data: 'x', event: 'e'.repeat(201) } }, 400, 'INVALID_EVENT'],
        [{ body: '{oops', headers: { 'content-type': 'application/json' } }, 400, 'INVALID_BODY'],
        [{ body: '<xml/>', headers: { 'content-type': 'application/xml' } }, 415, 'INVALID_BODY'],
      ];
      for (const [call, status, code] of cases) {
        const reply = await api(server, 'POST', '/broadcast', { token: TOKEN, ...call });
        assert.equal(reply.status, status, JSON.stringify(call));
        assert.equal(reply.json.success, false);
        assert.equal(reply.json.errorCode, code, JSON.stringify(call));
        assert.equal(typeof reply.json.error, 'string');
      }
      await c.sync();
      assert.deepEqual(c.deliveries, []);
    });
  });

  describe('POST /send', () => {
    it("reaches every socket of a user and no one else's", async () => {
      const user = freshUser();
      const one = await connectAs(user);
      const two = await connectAs(user, 'other-session');
      const stranger = await connectAs(freshUser());
      assert.deepEqual(await api(server, 'POST', '/send', { token: TOKEN, query: { user, type: 'text' }, body: 'to both' }), {
        status: 200,
        json: { success: true },
      });
      await one.text('to both');
      await two.text('to both');
      await stranger.sync();
      assert.deepEqual(stranger.deliveries, []);
    });

    it('reaches only the given session with user+session', async () => {
      const user = freshUser();
      const a = await connectAs(user, 'sa');
      const b = await connectAs(user, 'sb');
      await api(server, 'POST', '/send', { token: TOKEN, query: { user, session: 'sb', type: 'text' }, body: 'to sb' });
      await b.text('to sb');
      await a.sync();
      assert.deepEqual(a.deliveries, []);
    });

    it('reaches one connection by id', async () => {
      const user = freshUser();
      const target = await connectAs(user, 'target');
      const sibling = await connectAs(user, 'sibling');
      const id = (await infoOf({ user, session: 'target' })).connections[0]?.id;
      assert.ok(id);
      await api(server, 'POST', '/send', { token: TOKEN, query: { id, type: 'text' }, body: 'just you' });
      await target.text('just you');
      await sibling.sync();
      assert.deepEqual(sibling.deliveries, []);
    });

    it('names the event for envelope clients with ?event=', async () => {
      const user = freshUser();
      const c = await connectAs(user, undefined, '&format=envelope');
      await api(server, 'POST', '/send', { token: TOKEN, query: { user, type: 'text', event: 'notice' }, body: 'hey' });
      assert.deepEqual(await c.message((m) => m.event === 'notice'), { channel: `#server-to-user-${user}`, event: 'notice', data: 'hey' });
    });

    it('refuses a missing or unknown type with INVALID_MESSAGE_TYPE and a missing target with MISSING_CONNECTION_OR_USER', async () => {
      assert.deepEqual(
        await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'u' }, body: 'x' }),
        failure(400, 'INVALID_MESSAGE_TYPE', 'type must be text or binary'),
      );
      assert.deepEqual(
        await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'u', type: 'json' }, body: 'x' }),
        failure(400, 'INVALID_MESSAGE_TYPE', 'type must be text or binary'),
      );
      assert.deepEqual(
        await api(server, 'POST', '/send', { token: TOKEN, query: { type: 'text' }, body: 'x' }),
        failure(400, 'MISSING_CONNECTION_OR_USER', 'Give a connection id or a user'),
      );
    });
  });

  describe('POST /disconnect', () => {
    it("closes all of a user's sockets (code 4009) and answers how many", async () => {
      const user = freshUser();
      const a = await connectAs(user);
      const b = await connectAs(user);
      const bystander = await connectAs(freshUser());
      assert.deepEqual(await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user } }), {
        status: 200,
        json: { success: true, disconnected: 2 },
      });
      assert.equal(await a.closed, 4009);
      assert.equal(await b.closed, 4009);
      assert.equal(a.closeReason, 'Disconnected by the server');
      await bystander.sync();
      assert.deepEqual((await infoOf({ user })).connections, []);
    });

    it('closes only the given session, or the given connection id', async () => {
      const user = freshUser();
      const s1 = await connectAs(user, 's1');
      const s2 = await connectAs(user, 's2');
      const s3 = await connectAs(user, 's3');
      assert.deepEqual((await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user, session: 's1' } })).json, { success: true, disconnected: 1 });
      await s1.closed;
      const id = (await infoOf({ user, session: 's2' })).connections[0]?.id;
      assert.ok(id);
      assert.deepEqual((await api(server, 'POST', '/disconnect', { token: TOKEN, query: { id } })).json, { success: true, disconnected: 1 });
      await s2.closed;
      await s3.sync();
      assert.deepEqual((await infoOf({ user })).connections.map((c) => c.session), ['s3']);
    });

    it("deletes the user's claims unless keepClaims is set", async () => {
      const user = freshUser();
      const make = async (): Promise<string> => ((await api(server, 'POST', '/claim', { token: TOKEN, query: { user } })).json.claim as ClaimInfo).id;
      await make();
      assert.deepEqual((await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user, keepClaims: 'true' } })).json, { success: true, disconnected: 0 });
      assert.equal((await infoOf({ user })).claims.length, 1);
      const second = await make();
      await api(server, 'POST', '/disconnect', { token: TOKEN, query: { user } });
      assert.deepEqual((await infoOf({ user })).claims, []);
      const r = await connectNative(server, `/connect?claim=${second}`).then(
        () => 'accepted',
        (err: Error) => err.message,
      );
      assert.match(r, /401 .*MISSING_CLAIM/);
    });

    it('refuses a missing target with MISSING_CONNECTION_OR_USER', async () => {
      assert.deepEqual(await api(server, 'POST', '/disconnect', { token: TOKEN }), failure(400, 'MISSING_CONNECTION_OR_USER', 'Give a connection id or a user'));
    });
  });

  describe('GET /info', () => {
    it("lists a user's connections with id, worker, lastPing, user, session and protocol, and its claims", async () => {
      const user = freshUser();
      await connectAs(user, 'desk');
      await connectAs(user);
      const made = (await api(server, 'POST', '/claim', { token: TOKEN, query: { user, session: 'phone', duration: '30' } })).json.claim as ClaimInfo;
      const { connections, claims } = await infoOf({ user });
      assert.equal(connections.length, 2);
      const now = nowSeconds();
      for (const c of connections) {
        assert.match(c.id, /^\d+\.\d+$/);
        assert.equal(typeof c.worker, 'string');
        assert.ok(c.worker.length > 0);
        assert.ok(Math.abs(c.lastPing - now) <= 2, `lastPing ${c.lastPing} vs ${now}`);
        assert.equal(c.user, user);
        assert.equal(c.protocol, 'native');
      }
      assert.equal(connections[0]?.worker, connections[1]?.worker);
      assert.deepEqual(connections.map((c) => c.session).sort(), ['desk', undefined]);
      assert.deepEqual(claims, [{ id: made.id, expiration: made.expiration, user, session: 'phone' }]);
      assert.deepEqual((await infoOf({ user, session: 'desk' })).connections.map((c) => c.session), ['desk']);
    });

    it('looks up one connection by id', async () => {
      const user = freshUser();
      await connectAs(user);
      const [c] = (await infoOf({ user })).connections;
      assert.ok(c);
      const byId = await infoOf({ id: c.id });
      assert.deepEqual(byId, { success: true, connections: [c], claims: [] });
    });

    it('refuses a missing target with MISSING_CONNECTION_OR_USER', async () => {
      assert.deepEqual(await api(server, 'GET', '/info', { token: TOKEN }), failure(400, 'MISSING_CONNECTION_OR_USER', 'Give a connection id or a user'));
    });
  });

  describe('POST /claim', () => {
    const claimWith = (query: Record<string, string>, json?: unknown): ReturnType<typeof api> =>
      api(server, 'POST', '/claim', { token: TOKEN, query, ...(json === undefined ? {} : { json }) });

    it("creates a claim expiring after the app's claimTtlSeconds by default", async () => {
      const before = nowSeconds();
      const reply = await claimWith({ user: 'u1' });
      assert.equal(reply.status, 200);
      const claim = reply.json.claim as ClaimInfo;
      assert.deepEqual(Object.keys(reply.json).sort(), ['claim', 'success']);
      assert.deepEqual(Object.keys(claim).sort(), ['expiration', 'id', 'user']);
      assert.equal(claim.user, 'u1');
      assert.ok(claim.id.length >= 20, claim.id);
      assert.ok(claim.expiration >= before + CLAIM_TTL && claim.expiration <= nowSeconds() + CLAIM_TTL);
    });

    it('takes expiration (over duration), duration, session and id', async () => {
      const at = nowSeconds() + 500;
      assert.deepEqual((await claimWith({ user: 'u2', session: 's', expiration: String(at), duration: '5', id: 'my-claim-id-1' })).json, {
        success: true,
        claim: { id: 'my-claim-id-1', expiration: at, user: 'u2', session: 's' },
      });
      const before = nowSeconds();
      const claim = (await claimWith({ user: 'u3', duration: '10' })).json.claim as ClaimInfo;
      assert.ok(claim.expiration >= before + 10 && claim.expiration <= nowSeconds() + 10);
    });

    it('reads its parameters from a JSON or form body too', async () => {
      assert.deepEqual((await claimWith({}, { user: 'u4', id: 'json-claim-id', expiration: 4102444800 })).json, {
        success: true,
        claim: { id: 'json-claim-id', expiration: 4102444800, user: 'u4' },
      });
      const form = await api(server, 'POST', '/claim', { token: TOKEN, form: { user: 'u5', id: 'form-claim-id' } });
      assert.equal((form.json.claim as ClaimInfo).id, 'form-claim-id');
    });

    it("refuses bad parameters with dSock's codes", async () => {
      const cases: Array<[Record<string, string>, string, string]> = [
        [{}, 'USER_ID_REQUIRED', 'user is required'],
        [{ user: 'u', expiration: 'tomorrow' }, 'INVALID_EXPIRATION', 'expiration must be an integer (epoch seconds)'],
        [{ user: 'u', expiration: '-5' }, 'NEGATIVE_EXPIRATION', 'expiration must not be negative'],
        [{ user: 'u', duration: '1.5' }, 'INVALID_DURATION', 'duration must be an integer (seconds)'],
        [{ user: 'u', duration: '-1' }, 'NEGATIVE_DURATION', 'duration must not be negative'],
      ];
      for (const [query, code, error] of cases) assert.deepEqual(await claimWith(query), failure(400, code, error), code);
    });

    it('refuses an id that is in use with CLAIM_ID_ALREADY_USED', async () => {
      assert.equal((await claimWith({ user: 'u6', id: 'taken-id' })).status, 200);
      assert.deepEqual(await claimWith({ user: 'u7', id: 'taken-id' }), failure(400, 'CLAIM_ID_ALREADY_USED', 'That claim id is already in use'));
    });
  });
});
