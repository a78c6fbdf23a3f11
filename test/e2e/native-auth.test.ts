import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { SignJWT } from 'jose';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient } from '../helpers/clients.js';
import {
  answerJson,
  api,
  closeAll,
  connectNative,
  makeJwt,
  nowSeconds,
  refusal,
  subscribeNative,
  type NativeClient,
} from '../helpers/native.js';
import { freePort } from '../helpers/cluster.js';
import { APP, startServer } from '../helpers/server.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

const TOKEN = 'auth-default-api-token';
const HOOK_TOKEN = 'auth-hooked-api-token';
const JWT_SECRET = 'native-auth-jwt-secret-42';
const HOOKED = { id: 'hooked-id', key: 'hooked-key', secret: 'hooked-secret' } as const;
const CLOSED = { id: 'closed-id', key: 'closed-key', secret: 'closed-secret' } as const;
const NOJWT = { id: 'nojwt-id', key: 'nojwt-key', secret: 'nojwt-secret' } as const;
const GUARDED = { id: 'guarded-id', key: 'guarded-key', secret: 'guarded-secret' } as const;
const DOWN = { id: 'down-id', key: 'down-key', secret: 'down-secret' } as const;
const WEBHOOK_TIMEOUT_MS = 300;

describe('native connection authentication', () => {
  let server: Switchboard;
  let webhook: WebhookReceiver;
  /** Answers held back by the "slow" session, released when the suite ends. */
  const held: ServerResponse[] = [];
  const clients: NativeClient[] = [];
  const connect = async (path: string, opts: Parameters<typeof connectNative>[2] = {}): Promise<NativeClient> => {
    const c = await connectNative(server, path, opts);
    clients.push(c);
    return c;
  };
  const info = async (user: string, token = TOKEN): Promise<Record<string, unknown>> => {
    const reply = await api(server, 'GET', '/info', { token, query: { user } });
    assert.equal(reply.status, 200);
    return reply.json;
  };
  const claim = async (query: Record<string, string>): Promise<string> => {
    const reply = await api(server, 'POST', '/claim', { token: TOKEN, query });
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    return (reply.json.claim as { id: string }).id;
  };
  const jwt = (claims: Record<string, unknown>): Promise<string> => makeJwt(JWT_SECRET, claims);

  before(async () => {
    webhook = await startReceiver({ path: '/auth', respond: (req, res) => {
      const session = /(?:^|;\s*)session=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      switch (session) {
        case 'good':
          return answerJson(res, 200, { id: 'web-user', session: 'sess-9', channels: ['private-web', 'presence-web'], info: { name: 'Web' } });
        case 'second':
          return answerJson(res, 200, { id: 'web-user-2', channels: ['presence-web'], info: { name: 'Second' } });
        case 'numeric':
          return answerJson(res, 200, { id: 42 });
        case 'forbidden':
          return answerJson(res, 403, { error: 'banned' });
        case 'broken':
          return answerJson(res, 500, { error: 'oops' });
        case 'expired': // what a web framework does for a guest
          res.writeHead(302, { location: '/login' });
          return res.end();
        case 'noid':
          return answerJson(res, 200, { name: 'who?' });
        case 'huge': // valid JSON, far larger than any identity
          return answerJson(res, 200, { id: 'huge', padding: 'x'.repeat(200_000) });
        case 'deepinfo':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(`{"id":"deep","info":${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
        case 'longid':
          return answerJson(res, 200, { id: 'x'.repeat(129) });
        case 'infinite':
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end('{"id":1e400}');
        case 'notjson':
          res.writeHead(200, { 'content-type': 'text/plain' });
          return res.end('ok');
        case 'slow':
          held.push(res);
          return;
        default:
          if (req.headers.authorization === 'Bearer backend-session-token') return answerJson(res, 200, { id: 'bearer-user' });
          return answerJson(res, 401, { error: 'who are you' });
      }
    } });
    server = await startServer({
      apps: [
        { ...APP, apiToken: TOKEN, jwtSecret: JWT_SECRET },
        { ...HOOKED, apiToken: HOOK_TOKEN, authWebhookUrl: webhook.url, authWebhookTimeoutMs: WEBHOOK_TIMEOUT_MS },
        { ...CLOSED, jwtSecret: JWT_SECRET, allowAnonymous: false },
        { ...NOJWT },
        { ...GUARDED, allowedOrigins: ['https://good.example'] },
        // A port that was just free: nothing listens there, so the connection is refused.
        { ...DOWN, authWebhookUrl: `http://127.0.0.1:${await freePort()}/auth` },
      ],
    });
  });
  after(async () => {
    await closeAll(clients);
    for (const res of held) res.end();
    await server.close();
    await webhook.close();
  });

  describe('single-use claims', () => {
    it('connects with ?claim= as the claim’s user and session', async () => {
      const id = await claim({ user: 'alice', session: 'tab-1' });
      const c = await connect(`/connect?claim=${id}`);
      const seen = await info('alice');
      assert.deepEqual(
        (seen.connections as Array<Record<string, unknown>>).map(({ user, session, protocol }) => ({ user, session, protocol })),
        [{ user: 'alice', session: 'tab-1', protocol: 'native' }],
      );
      await api(server, 'POST', '/send', { token: TOKEN, query: { user: 'alice', session: 'tab-1', type: 'text' }, body: 'for alice' });
      await c.text('for alice');
    });

    it('gives a claim made with channels=… exactly those private channels', async () => {
      const id = await claim({ user: 'carol', channels: 'private-carol,presence-team-*' });
      const c = await connect(`/connect?ack=1&claim=${id}`);
      await subscribeNative(c, 'private-carol');
      await subscribeNative(c, 'presence-team-1');
      c.send({ action: 'subscribe', channel: 'private-dave' });
      await c.error('FORBIDDEN_CHANNEL', 'private-dave');
    });

    it('refuses a claim the second time with 401 MISSING_CLAIM', async () => {
      const id = await claim({ user: 'bob' });
      await connect(`/connect?claim=${id}`);
      assert.deepEqual(await refusal(server, `/connect?claim=${id}`), {
        status: 401,
        body: { success: false, error: 'Claim not found (or already used)', errorCode: 'MISSING_CLAIM' },
      });
    });

    it('refuses an unknown claim with 401 MISSING_CLAIM', async () => {
      const r = await refusal(server, '/connect?claim=never-made');
      assert.equal(r.status, 401);
      assert.equal(r.body.errorCode, 'MISSING_CLAIM');
    });

    it('refuses a claim whose expiration has passed with 401 EXPIRED_CLAIM', async () => {
      const id = await claim({ user: 'carol', expiration: String(nowSeconds() - 5) });
      assert.deepEqual(await refusal(server, `/connect?claim=${id}`), {
        status: 401,
        body: { success: false, error: 'Claim has expired', errorCode: 'EXPIRED_CLAIM' },
      });
    });

    it('expires a duration=1 claim once its second is over', async () => {
      const reply = await api(server, 'POST', '/claim', { token: TOKEN, query: { user: 'dave', duration: '1' } });
      const made = reply.json.claim as { id: string; expiration: number };
      // The claim is good up to its expiration second; wait just past it.
      await new Promise((resolve) => setTimeout(resolve, made.expiration * 1000 - Date.now() + 20));
      const r = await refusal(server, `/connect?claim=${made.id}`);
      assert.equal(r.body.errorCode, 'EXPIRED_CLAIM');
    });

    it('takes the claim before a JWT when both are given', async () => {
      const id = await claim({ user: 'erin' });
      await connect(`/connect?claim=${id}&jwt=not-a-jwt`);
      assert.equal(((await info('erin')).connections as unknown[]).length, 1);
    });
  });

  describe('JWT', () => {
    const sessionsOf = async (user: string): Promise<unknown[]> =>
      ((await info(user)).connections as Array<Record<string, unknown>>).map((c) => c.session);

    it('accepts a HS256 JWT from ?jwt=, with sub as the user and sid as the session', async () => {
      await connect(`/ws?jwt=${await jwt({ sub: 'jwt-q', sid: 'S1', exp: nowSeconds() + 60 })}`);
      assert.deepEqual(await sessionsOf('jwt-q'), ['S1']);
    });

    it('accepts a JWT from ?token=', async () => {
      await connect(`/ws?token=${await jwt({ sub: 'jwt-t', sid: 'S2', exp: nowSeconds() + 60 })}`);
      assert.deepEqual(await sessionsOf('jwt-t'), ['S2']);
    });

    it('accepts a JWT from Authorization: Bearer', async () => {
      const token = await jwt({ sub: 'jwt-h', exp: nowSeconds() + 60 });
      await connect('/ws', { headers: { Authorization: `Bearer ${token}` } });
      assert.deepEqual(await sessionsOf('jwt-h'), [undefined]);
    });

    it('refuses an expired JWT with 401 INVALID_JWT', async () => {
      const token = await jwt({ sub: 'late', exp: nowSeconds() - 10 });
      assert.deepEqual(await refusal(server, `/ws?jwt=${token}`), {
        status: 401,
        body: { success: false, error: 'JWT has expired', errorCode: 'INVALID_JWT' },
      });
    });

    it('accepts an iat-only JWT while it is fresh and refuses one 61 s old', async () => {
      await connect(`/ws?jwt=${await jwt({ sub: 'fresh', iat: nowSeconds() })}`);
      assert.equal(((await info('fresh')).connections as unknown[]).length, 1);
      const stale = await jwt({ sub: 'stale', iat: nowSeconds() - 61 });
      assert.deepEqual(await refusal(server, `/ws?jwt=${stale}`), {
        status: 401,
        body: { success: false, error: 'JWT has expired', errorCode: 'INVALID_JWT' },
      });
    });

    it('lets exp take precedence over an old iat', async () => {
      await connect(`/ws?jwt=${await jwt({ sub: 'exp-wins', iat: nowSeconds() - 600, exp: nowSeconds() + 60 })}`);
      assert.equal(((await info('exp-wins')).connections as unknown[]).length, 1);
    });

    it('refuses a JWT signed with another secret, a malformed one and a HS512 one', async () => {
      const wrong = await makeJwt('some-other-secret-entirely', { sub: 'x', exp: nowSeconds() + 60 });
      const hs512 = await new SignJWT({ sub: 'x', exp: nowSeconds() + 60 })
        .setProtectedHeader({ alg: 'HS512' })
        .sign(new TextEncoder().encode(JWT_SECRET));
      for (const token of [wrong, 'abc.def.ghi', hs512]) {
        assert.deepEqual(await refusal(server, `/ws?jwt=${token}`), {
          status: 401,
          body: { success: false, error: 'JWT is malformed or not signed with the app secret', errorCode: 'INVALID_JWT' },
        });
      }
    });

    it('refuses a JWT without sub, without exp or iat, with a channels claim that is not a string list, issued in the future, or over the presence limits', async () => {
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ exp: nowSeconds() + 60 }, 'JWT needs a sub (user id)'],
        [{ sub: 'timeless' }, 'JWT needs exp or iat'],
        [{ sub: 'odd', exp: nowSeconds() + 60, channels: 'private-a' }, 'JWT channels must be a list of strings'],
        [{ sub: 'future', iat: nowSeconds() + 3600 }, 'JWT iat is in the future'],
        [{ sub: 'x'.repeat(129), exp: nowSeconds() + 60 }, 'JWT user id is longer than 128 characters'],
        [{ sub: 'big', exp: nowSeconds() + 60, info: { bio: 'x'.repeat(1100) } }, 'JWT info is larger than 1024 bytes'],
      ];
      for (const [claims, error] of cases) {
        assert.deepEqual(await refusal(server, `/ws?jwt=${await jwt(claims)}`), { status: 401, body: { success: false, error, errorCode: 'INVALID_JWT' } });
      }
    });

    it('refuses any JWT with INVALID_JWT on an app without a JWT secret', async () => {
      const token = await jwt({ sub: 'x', exp: nowSeconds() + 60 });
      assert.deepEqual(await refusal(server, `/ws/${NOJWT.key}?jwt=${token}`), {
        status: 401,
        body: { success: false, error: 'JWT authentication is not enabled for this app', errorCode: 'INVALID_JWT' },
      });
    });

    it('allows exactly the private and presence channels of its channels list, prefix* patterns included', async () => {
      const token = await jwt({ sub: 'lister', exp: nowSeconds() + 60, channels: ['private-team', 'presence-room-*', 'private-docs-*'] });
      const c = await connect(`/ws?ack=1&jwt=${token}`);
      for (const ok of ['private-team', 'presence-room-1', 'presence-room-', 'private-docs-42']) await subscribeNative(c, ok);
      for (const no of ['private-team2', 'private-other', 'presence-lobby', 'private-doc']) {
        c.send({ action: 'subscribe', channel: no });
        await c.error('FORBIDDEN_CHANNEL', no);
      }
      await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channels: ['private-other', 'private-team'], data: 'team only' } });
      await c.text('team only');
      await c.sync();
      assert.deepEqual(c.deliveries.map((d) => d.text), ['team only']);
    });

    it('allows no private channel to a JWT without a channels list', async () => {
      const c = await connect(`/ws?ack=1&jwt=${await jwt({ sub: 'nolist', exp: nowSeconds() + 60 })}`);
      c.send({ action: 'subscribe', channel: 'private-anything' });
      await c.error('FORBIDDEN_CHANNEL', 'private-anything');
      await subscribeNative(c, 'public-ok');
    });
  });

  describe('presence', () => {
    it('joins as the authenticated user with the JWT info, and envelope members see member_added/member_removed', async () => {
      const token = (sub: string, name: string): Promise<string> =>
        jwt({ sub, exp: nowSeconds() + 60, channels: ['presence-*'], info: { name } });
      const ann = await connect(`/ws?format=envelope&jwt=${await token('ann', 'Ann')}`);
      const raw = await connect(`/ws?ack=1&jwt=${await token('rawuser', 'Raw')}`);
      await subscribeNative(ann, 'presence-hall');
      await subscribeNative(raw, 'presence-hall');
      assert.deepEqual(await ann.message((m) => m.event === 'member_added'), {
        channel: 'presence-hall',
        event: 'member_added',
        data: { user_id: 'rawuser', user_info: { name: 'Raw' } },
      });
      const ben = await connect(`/ws?format=envelope&jwt=${await token('ben', 'Ben')}`);
      await subscribeNative(ben, 'presence-hall');
      await ann.message((m) => m.event === 'member_added' && (m.data as { user_id: string }).user_id === 'ben');
      ben.close();
      assert.deepEqual(await ann.message((m) => m.event === 'member_removed'), {
        channel: 'presence-hall',
        event: 'member_removed',
        data: { user_id: 'ben' },
      });
      await raw.sync();
      assert.deepEqual(raw.deliveries, [], 'raw clients get no presence notices');
    });
  });

  describe('auth webhook', () => {
    const hooked = `/ws/${HOOKED.key}`;

    it('forwards Cookie, Authorization, Origin, User-Agent, the client IP and the app id', async () => {
      const before = webhook.requests.length;
      await connect(hooked, {
        headers: { Cookie: 'theme=dark; session=good', Authorization: 'Basic dXNlcjpwdw==', 'User-Agent': 'native-test/1.0', 'X-Forwarded-Host': 'app.example' },
        origin: 'https://app.example', // the site's own page, behind a proxy
      });
      assert.equal(webhook.requests.length, before + 1);
      const call = webhook.requests[before];
      assert.ok(call);
      assert.equal(call.method, 'GET');
      assert.equal(call.url, '/auth');
      assert.equal(call.headers.cookie, 'theme=dark; session=good');
      assert.equal(call.headers.authorization, 'Basic dXNlcjpwdw==');
      assert.equal(call.headers.origin, 'https://app.example');
      assert.equal(call.headers['user-agent'], 'native-test/1.0');
      assert.equal(call.headers['x-forwarded-for'], '127.0.0.1');
      assert.equal(call.headers['x-switchboard-app'], HOOKED.id);
    });

    it('takes the user, session and channels from a 200 answer', async () => {
      const c = await connect(`${hooked}?ack=1`, { headers: { Cookie: 'session=good' } });
      const seen = await info('web-user', HOOK_TOKEN);
      assert.deepEqual(
        (seen.connections as Array<Record<string, unknown>>).map(({ user, session }) => ({ user, session })).at(-1),
        { user: 'web-user', session: 'sess-9' },
      );
      await subscribeNative(c, 'private-web');
      c.send({ action: 'subscribe', channel: 'private-else' });
      await c.error('FORBIDDEN_CHANNEL', 'private-else');
    });

    it('joins presence channels as the webhook user, with the webhook info', async () => {
      const first = await connect(`${hooked}?format=envelope`, { headers: { Cookie: 'session=good' } });
      const second = await connect(`${hooked}?format=envelope`, { headers: { Cookie: 'session=second' } });
      await subscribeNative(first, 'presence-web');
      await subscribeNative(second, 'presence-web');
      assert.deepEqual(await first.message((m) => m.event === 'member_added'), {
        channel: 'presence-web',
        event: 'member_added',
        data: { user_id: 'web-user-2', user_info: { name: 'Second' } },
      });
    });

    it('accepts a numeric id as a string', async () => {
      await connect(hooked, { headers: { Cookie: 'session=numeric' } });
      assert.equal(((await info('42', HOOK_TOKEN)).connections as unknown[]).length, 1);
    });

    it('forwards a Bearer token to the webhook when the app has no JWT secret', async () => {
      await connect(hooked, { headers: { Authorization: 'Bearer backend-session-token' } });
      assert.equal(((await info('bearer-user', HOOK_TOKEN)).connections as unknown[]).length, 1);
    });

    it('refuses a page of another site (cross-site Origin) with 403 before asking the webhook', async () => {
      const asked = webhook.requests.length;
      assert.deepEqual(await refusal(server, hooked, { headers: { Cookie: 'session=good', Origin: 'https://evil.example' } }), {
        status: 403,
        body: { success: false, error: 'Origin is another site: list it in allowedOrigins to let its pages connect with their cookies', errorCode: 'ORIGIN_NOT_ALLOWED' },
      });
      assert.equal(webhook.requests.length, asked, 'the webhook was not asked');
    });

    it("lets this site's own pages in: Origin matching Host, or X-Forwarded-Host behind a proxy that rewrites Host", async () => {
      const self = `http://127.0.0.1:${server.port}`;
      await connect(hooked, { headers: { Cookie: 'session=good', Origin: self } });
      await connect(hooked, { headers: { Cookie: 'session=good', Origin: 'https://www.example.com', 'X-Forwarded-Host': 'www.example.com' } });
    });

    it('refuses with 403 AUTH_REFUSED when the webhook answers 403', async () => {
      assert.deepEqual(await refusal(server, hooked, { headers: { Cookie: 'session=forbidden' } }), {
        status: 403,
        body: { success: false, error: 'The auth webhook answered 403', errorCode: 'AUTH_REFUSED' },
      });
    });

    it('refuses with 401 AUTH_REFUSED when the webhook answers 401 or a redirect, no JSON, no usable id, an identity over the presence limits, or more than 64 KiB', async () => {
      const cases: Array<[string, string]> = [
        ['', 'The auth webhook answered 401'],
        ['session=expired', 'The auth webhook answered 302'],
        ['session=notjson', 'The auth webhook answered with something that is not JSON'],
        ['session=noid', 'The auth webhook gave no id (a string or an integer)'],
        ['session=infinite', 'The auth webhook gave no id (a string or an integer)'],
        ['session=huge', "The auth webhook's answer was cut off or larger than 65536 bytes"],
        ['session=deepinfo', "The auth webhook's info is nested too deeply"],
        ['session=longid', "The auth webhook's user id is longer than 128 characters"],
      ];
      for (const [cookie, error] of cases) {
        const headers: Record<string, string> = cookie ? { Cookie: cookie } : {};
        assert.deepEqual(await refusal(server, hooked, { headers }), { status: 401, body: { success: false, error, errorCode: 'AUTH_REFUSED' } }, cookie);
      }
    });

    it('tells a failing webhook from a refusal: 502 AUTH_WEBHOOK_FAILED when it answers 5xx', async () => {
      assert.deepEqual(await refusal(server, hooked, { headers: { Cookie: 'session=broken' } }), {
        status: 502,
        body: { success: false, error: 'The auth webhook failed (it answered 500)', errorCode: 'AUTH_WEBHOOK_FAILED' },
      });
    });

    it('refuses with 503 AUTH_WEBHOOK_FAILED when the webhook does not answer within the timeout', async () => {
      const started = Date.now();
      assert.deepEqual(await refusal(server, hooked, { headers: { Cookie: 'session=slow' } }), {
        status: 503,
        body: { success: false, error: 'The auth webhook did not answer in time', errorCode: 'AUTH_WEBHOOK_FAILED' },
      });
      const took = Date.now() - started;
      assert.ok(took >= WEBHOOK_TIMEOUT_MS - 20 && took < WEBHOOK_TIMEOUT_MS + 1500, `took ${took} ms`);
    });

    it("refuses with 503 AUTH_WEBHOOK_FAILED when the webhook cannot be reached, while another app's webhook clients still get in", async () => {
      assert.deepEqual(await refusal(server, `/ws/${DOWN.key}`, { headers: { Cookie: 'session=good' } }), {
        status: 503,
        body: { success: false, error: 'The auth webhook could not be reached', errorCode: 'AUTH_WEBHOOK_FAILED' },
      });
      await connect(hooked, { headers: { Cookie: 'session=good' } }); // another app's webhook: unaffected
    });
  });

  describe('anonymous access', () => {
    it('refuses a connection without credentials with 401 MISSING_AUTHENTICATION where the app forbids anonymous access', async () => {
      assert.deepEqual(await refusal(server, `/ws/${CLOSED.key}`), {
        status: 401,
        body: { success: false, error: 'No claim, JWT or session given', errorCode: 'MISSING_AUTHENTICATION' },
      });
      await connect(`/ws/${CLOSED.key}?jwt=${await jwt({ sub: 'member', exp: nowSeconds() + 60 })}`);
    });

    it('lets anonymous connections in where allowed, for public channels', async () => {
      const c = await connect('/ws?ack=1');
      await subscribeNative(c, 'public-news');
    });
  });

  describe('allowed origins', () => {
    it('refuses a native upgrade from another origin with 403 ORIGIN_NOT_ALLOWED', async () => {
      assert.deepEqual(await refusal(server, `/ws/${GUARDED.key}`, { origin: 'https://evil.example' }), {
        status: 403,
        body: { success: false, error: 'Origin not allowed', errorCode: 'ORIGIN_NOT_ALLOWED' },
      });
    });

    it('accepts an allowed origin, and a client that sends no Origin', async () => {
      await connect(`/ws/${GUARDED.key}`, { origin: 'https://good.example' });
      await connect(`/ws/${GUARDED.key}`);
    });

    it('applies the same check on the Pusher endpoint, before the upgrade', async () => {
      const r = await refusal(server, `/app/${GUARDED.key}?protocol=7`, { origin: 'https://evil.example' });
      assert.equal(r.status, 403);
      assert.deepEqual(r.body, { error: 'Origin not allowed' });
      const ok = await connect(`/app/${GUARDED.key}?protocol=7`, { origin: 'https://good.example' });
      const established = await ok.message((m) => m.event === 'pusher:connection_established');
      assert.equal(typeof established.data, 'string');
    });

    it('lets pusher-js (no Origin header in Node) connect to a guarded app', async (t) => {
      const client = pusherClient(server, { key: GUARDED.key });
      t.after(() => client.disconnect());
      await connected(client);
    });
  });
});
