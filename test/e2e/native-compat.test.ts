import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { answerJson, api, closeAll, makeJwt, nowSeconds, refusal, NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';

/**
 * Existing clients and backends of the systems Switchboard replaces, pointed at it unchanged:
 * cadsock's browser client and PHP backend, and dSock's documented API flow.
 */

const CADSOCK_TOKEN = 'cadsock-broadcast-secret';
const CADSOCK = { id: 'cadsock-id', key: 'cadsock-key', secret: 'cadsock-secret' } as const;
const DSOCK_TOKEN = 'abcxyz-dsock-api-token';
const DSOCK_JWT_SECRET = 'dsock-jwt-secret-0123456789';

/** What cadsock's client does: `new WebSocket("ws://host/ws")` (cookies ride along), then subscribe on demand. */
async function cadsockClient(server: Switchboard, cookie: string): Promise<NativeClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, { headers: { Cookie: cookie } });
  const client = new NativeClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

/** cadsock's PHP backend: http_build_query(['channel' => ..., 'message' => ...]) as a form POST. */
function cadsockBroadcast(server: Switchboard, channel: string, message: string, token?: string): Promise<Response> {
  const headers: Record<string, string> = { 'Content-type': 'application/x-www-form-urlencoded' };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(`${server.url}/internal/broadcast`, { method: 'POST', headers, body: new URLSearchParams({ channel, message }).toString() });
}

describe('a cadsock client and backend against Switchboard', () => {
  let server: Switchboard;
  let auth: WebhookReceiver;
  const clients: NativeClient[] = [];

  before(async () => {
    // cadsock's auth_endpoint: reads the AUTH_TOKEN cookie, answers {"id": ...} or 401.
    auth = await startReceiver({ path: '/auth', respond: (req, res) => {
      const token = /(?:^|;\s*)AUTH_TOKEN=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (token === 'valid-token-of-user-123') answerJson(res, 200, { id: 'user-123' });
      else answerJson(res, 401, { error: 'Missing authentication token' });
    } });
    server = await startServer({ apps: [{ ...CADSOCK, apiToken: CADSOCK_TOKEN, authWebhookUrl: auth.url, nativeFormat: 'cadsock' }] });
  });
  after(async () => {
    await closeAll(clients);
    await server.close();
    await auth.close();
  });

  /** What the client got, pongs of the sync round trips (a Switchboard addition) left out. */
  const received = (client: NativeClient): unknown[] => client.texts.filter((t) => t !== '{"type":"pong"}').map((t): unknown => JSON.parse(t));

  it("authenticates through the auth endpoint, subscribes with {\"action\":\"subscribe\"} and gets cadsock's messages", async () => {
    const client = await cadsockClient(server, 'AUTH_TOKEN=valid-token-of-user-123');
    clients.push(client);
    client.send({ action: 'subscribe', channel: 'news' });
    await client.sync();
    const message = JSON.stringify('(news) Hello World! at 12:00:00'); // send.php json_encode()s its text
    const res = await cadsockBroadcast(server, 'news', message, CADSOCK_TOKEN);
    assert.ok(res.status >= 200 && res.status < 300, `status ${res.status}`);
    await client.until(() => received(client).length === 2);
    // cadsock's hub answers every subscribe and wraps every message; its page switches on `type`.
    assert.deepEqual(received(client), [
      { type: 'subscribed', channel: 'news' },
      { type: 'message', channel: 'news', payload: '(news) Hello World! at 12:00:00' },
    ]);
  });

  it('stops delivery after {"action":"unsubscribe"}, which is answered', async () => {
    const client = await cadsockClient(server, 'AUTH_TOKEN=valid-token-of-user-123');
    clients.push(client);
    client.send({ action: 'subscribe', channel: 'sports' });
    await client.sync();
    await cadsockBroadcast(server, 'sports', JSON.stringify({ score: '1-0' }), CADSOCK_TOKEN);
    await client.until(() => received(client).length === 2);
    client.send({ action: 'unsubscribe', channel: 'sports' });
    await client.sync();
    await cadsockBroadcast(server, 'sports', JSON.stringify({ score: '2-0' }), CADSOCK_TOKEN);
    await client.sync();
    assert.deepEqual(received(client), [
      { type: 'subscribed', channel: 'sports' },
      { type: 'message', channel: 'sports', payload: { score: '1-0' } },
      { type: 'unsubscribed', channel: 'sports' },
    ]);
  });

  it("reports a bad action as cadsock does, in `error`", async () => {
    const client = await cadsockClient(server, 'AUTH_TOKEN=valid-token-of-user-123');
    clients.push(client);
    client.send({ action: 'dance', channel: 'news' });
    await client.sync();
    const [error] = received(client) as Array<Record<string, unknown>>;
    assert.equal(error?.type, 'error');
    assert.equal(typeof error?.error, 'string');
  });

  it('delivers a message that is not JSON as a string payload rather than dropping it', async () => {
    const client = await cadsockClient(server, 'AUTH_TOKEN=valid-token-of-user-123');
    clients.push(client);
    client.send({ action: 'subscribe', channel: 'plain' });
    await client.sync();
    await cadsockBroadcast(server, 'plain', 'not json', CADSOCK_TOKEN);
    await client.until(() => received(client).length === 2);
    assert.deepEqual(received(client)[1], { type: 'message', channel: 'plain', payload: 'not json' });
  });

  it("lets a client ask for another format than the app's: ?format=raw gets the bare payloads", async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?format=raw`, { headers: { Cookie: 'AUTH_TOKEN=valid-token-of-user-123' } });
    const client = new NativeClient(ws);
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    client.send({ action: 'subscribe', channel: 'bare' });
    await client.sync();
    await cadsockBroadcast(server, 'bare', '"just this"', CADSOCK_TOKEN);
    await client.text('"just this"');
    assert.deepEqual(received(client), ['just this']);
  });

  it("keeps the app's format for a ?format= it does not know (a prototype key included)", async () => {
    for (const format of ['nonsense', '__proto__']) {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?format=${format}`, { headers: { Cookie: 'AUTH_TOKEN=valid-token-of-user-123' } });
      const client = new NativeClient(ws);
      clients.push(client);
      await once(ws, 'open');
      client.send({ action: 'subscribe', channel: `fmt-${format}` });
      await client.sync();
      assert.deepEqual(received(client), [{ type: 'subscribed', channel: `fmt-${format}` }], format);
    }
  });

  it('refuses the upgrade when the auth endpoint refuses the cookie', async () => {
    const r = await refusal(server, '/ws', { headers: { Cookie: 'AUTH_TOKEN=forged' } });
    assert.equal(r.status, 401);
    assert.equal(r.body.errorCode, 'AUTH_REFUSED');
  });

  it("closes cadsock's hole: a broadcast without the token is refused and delivers nothing", async () => {
    const client = await cadsockClient(server, 'AUTH_TOKEN=valid-token-of-user-123');
    clients.push(client);
    client.send({ action: 'subscribe', channel: 'open-door' });
    await client.sync();
    const res = await cadsockBroadcast(server, 'open-door', 'spoofed');
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), {
      success: false,
      error: 'Give an API token (Authorization: Bearer or ?token=) or a Pusher signature',
      errorCode: 'INVALID_AUTHORIZATION',
    });
    await client.sync();
    assert.deepEqual(received(client), [{ type: 'subscribed', channel: 'open-door' }]);
  });
});

describe('a dSock backend against Switchboard', () => {
  let server: Switchboard;
  const clients: NativeClient[] = [];
  const dsock = async (method: 'GET' | 'POST', pathAndQuery: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Record<string, unknown>> => {
    const res = await fetch(`${server.url}${pathAndQuery}`, { method, headers, ...(body === undefined ? {} : { body }) });
    return (await res.json()) as Record<string, unknown>;
  };
  const worker = async (query: string): Promise<NativeClient> => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/connect?${query}`);
    const client = new NativeClient(ws);
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  };

  before(async () => {
    server = await startServer({ apps: [{ ...APP, apiToken: DSOCK_TOKEN, jwtSecret: DSOCK_JWT_SECRET, allowAnonymous: false }] });
  });
  after(async () => {
    await closeAll(clients);
    await server.close();
  });

  it('claim → connect with ?claim= → send text and binary → info → disconnect', async () => {
    const created = await dsock('POST', `/claim?token=${DSOCK_TOKEN}&user=1&duration=10`);
    assert.equal(created.success, true);
    const claim = created.claim as { id: string; expiration: number; user: string };
    assert.equal(claim.user, '1');
    assert.ok(claim.expiration >= nowSeconds() + 9 && claim.expiration <= nowSeconds() + 10);

    const client = await worker(`claim=${claim.id}`);

    assert.deepEqual(await dsock('POST', `/send?token=${DSOCK_TOKEN}&user=1&type=text`, 'Hello from the API'), { success: true });
    const text = await client.text('Hello from the API');
    assert.equal(text.binary, false);
    const proto = Buffer.from([0x08, 0x96, 0x01]); // a protobuf message
    assert.deepEqual(await dsock('POST', `/send?token=${DSOCK_TOKEN}&user=1&type=binary`, proto), { success: true });
    assert.deepEqual((await client.frame((f) => f.binary)).data, proto);

    const info = await dsock('GET', `/info?token=${DSOCK_TOKEN}&user=1`);
    const [conn] = info.connections as Array<Record<string, unknown>>;
    assert.equal(info.success, true);
    assert.deepEqual(Object.keys(conn ?? {}).sort(), ['id', 'lastPing', 'protocol', 'user', 'worker']);
    assert.deepEqual(info.claims, []);

    const gone = await dsock('POST', `/disconnect?token=${DSOCK_TOKEN}&user=1`);
    assert.equal(gone.success, true);
    assert.equal(await client.closed, 4009);
  });

  it('takes a claim with session, expiration and id, authorized by a Bearer header (the README example)', async () => {
    const expiration = nowSeconds() + 300;
    const created = await dsock('POST', `/claim?user=1&session=a&expiration=${expiration}&id=a1b2c3`, undefined, { Authorization: `Bearer ${DSOCK_TOKEN}` });
    assert.deepEqual(created, { success: true, claim: { id: 'a1b2c3', expiration, user: '1', session: 'a' } });
    const a = await worker('claim=a1b2c3');
    const other = await worker(`jwt=${await makeJwt(DSOCK_JWT_SECRET, { sub: '1', sid: 'b', iat: nowSeconds() })}`);
    await dsock('POST', `/send?token=${DSOCK_TOKEN}&user=1&session=a&type=text`, 'session a only');
    await a.text('session a only');
    await other.sync();
    assert.deepEqual(other.texts, ['{"type":"pong"}']);
  });

  it('connects with a dSock JWT (sub, sid, iat) and refuses an unauthenticated worker connection', async () => {
    const client = await worker(`jwt=${await makeJwt(DSOCK_JWT_SECRET, { sub: '2', sid: 'x', iat: nowSeconds() })}`);
    await dsock('POST', `/send?token=${DSOCK_TOKEN}&user=2&session=x&type=text`, 'jwt works');
    await client.text('jwt works');
    const r = await refusal(server, '/connect');
    assert.deepEqual(r, { status: 401, body: { success: false, error: 'No claim, JWT or session given', errorCode: 'MISSING_AUTHENTICATION' } });
  });

  it('answers a bad token with INVALID_AUTHORIZATION', async () => {
    assert.deepEqual(await api(server, 'POST', '/send', { token: 'wrong-token-wrong-token', tokenInQuery: true, query: { user: '1', type: 'text' }, body: 'x' }), {
      status: 401,
      json: { success: false, error: 'Invalid API token', errorCode: 'INVALID_AUTHORIZATION' },
    });
  });
});
