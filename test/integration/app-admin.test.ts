import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { appSchema, type AppConfig } from '../../src/config/schema.js';
import { createServer, type Switchboard } from '../../src/index.js';
import { POSTGRES_URL, openStore, reachable, type StoreHarness } from '../helpers/app-stores.js';
import { connected, pusherClient, RawClient, serverSdk } from '../helpers/clients.js';
import { uniquePrefix } from '../helpers/cluster.js';
import { PROTOCOL_QUERY } from '../helpers/raw-pusher.js';

const TOKEN = 'admin-token-0123456789';
const run = promisify(execFile);

async function admin(server: Switchboard, method: string, path: string, body?: unknown, token = TOKEN): Promise<{ status: number; body: Record<string, unknown> }> {
  const reply = await fetch(`${server.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await reply.text();
  return { status: reply.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

describe('admin API, cluster-wide changes and the apps CLI (PostgreSQL)', { skip: await reachable(5432, 'PostgreSQL') }, () => {
  let h: StoreHarness;
  let a: Switchboard;
  let b: Switchboard;
  const clusterPrefix = uniquePrefix('apps');

  before(async () => {
    h = await openStore('postgres', []);
    // A TTL far past the test: only the cluster's news can explain a change seen on the other node.
    const node = { host: '127.0.0.1', port: 0, logLevel: 'silent', adminToken: TOKEN, appCacheTtlMs: 60_000, adapter: 'redis', clusterPrefix, ...h.config } as const;
    a = await createServer(node);
    b = await createServer(node);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    await h.close();
  });

  it('refuses requests without the admin token (401), and is off without one (404)', async () => {
    assert.equal((await admin(a, 'GET', '/admin/apps', undefined, 'wrong-token-0123456789')).status, 401);
    const plain = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', apps: [{ id: 'x', key: 'x', secret: 'x' }] });
    try {
      assert.equal((await admin(plain, 'GET', '/admin/apps')).status, 404);
    } finally {
      await plain.close();
    }
  });

  it('creates, lists, reads, updates, disables and deletes apps; a disable made on one node closes connections on another at once', { timeout: 30_000 }, async () => {
    const created = await admin(a, 'POST', '/admin/apps', { id: 'shop', enableClientMessages: true });
    assert.equal(created.status, 201);
    const shop = appSchema.parse(created.body['app']);
    assert.ok(shop.secret.length >= 32 && shop.key.length > 0, 'key and secret made up');
    assert.deepEqual((await admin(a, 'GET', '/admin/apps')).body['apps'], [{ ...shop, secret: undefined, apiToken: undefined, jwtSecret: undefined }].map((x) => JSON.parse(JSON.stringify(x)) as unknown));
    assert.equal(((await admin(a, 'GET', '/admin/apps/shop')).body['app'] as AppConfig).secret, shop.secret);

    const bad = await admin(a, 'PATCH', '/admin/apps/shop', { maxConnections: -1, webhooks: [{ url: 'ftp://x' }] });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body['error']), /maxConnections/);
    assert.equal((await admin(a, 'POST', '/admin/apps', { id: 'shop' })).status, 409);

    const onB = pusherClient(b, { key: shop.key, sdk: serverSdk(b, shop) });
    await connected(onB);
    const raw = await RawClient.connect(b, `/app/${shop.key}?${PROTOCOL_QUERY}`);
    await raw.socketId();
    const started = Date.now();
    assert.equal((await admin(a, 'POST', '/admin/apps/shop/disable')).status, 200);
    assert.equal(await raw.closed, 4003);
    assert.ok(Date.now() - started < 5_000, 'seen through the cluster, not after the 60 s TTL');
    assert.equal(await (await RawClient.connect(b, `/app/${shop.key}?${PROTOCOL_QUERY}`)).closed, 4003);

    assert.equal((await admin(a, 'POST', '/admin/apps/shop/enable')).status, 200);
    const back = await RawClient.connect(b, `/app/${shop.key}?${PROTOCOL_QUERY}`);
    await back.socketId();
    assert.equal((await admin(a, 'DELETE', '/admin/apps/shop')).status, 204);
    assert.equal(await back.closed, 4003);
    assert.equal((await admin(a, 'GET', '/admin/apps/shop')).status, 404);
    onB.disconnect();
  });

  it('the apps CLI: init (twice), add, list, rotate-secret, disable and delete', async () => {
    const env = { ...process.env, SWITCHBOARD_APP_STORE: 'postgres', SWITCHBOARD_APP_STORE_URL: POSTGRES_URL, SWITCHBOARD_APP_STORE_TABLE: String(h.config.appStoreTable) };
    const cli = (...args: string[]): Promise<{ stdout: string }> => run(process.execPath, ['dist/src/cli/main.js', 'apps', ...args], { env });
    await cli('init');
    await cli('init');
    const added = JSON.parse((await cli('add', '--id', 'cli-app', '--set', '{"maxConnections":5}')).stdout) as AppConfig;
    assert.equal(added.maxConnections, 5);
    assert.match((await cli('list')).stdout, /^cli-app\tkey \S+\tenabled$/m);
    const secret = (await cli('rotate-secret', 'cli-app')).stdout.trim();
    assert.notEqual(secret, added.secret);
    const stored = await h.store.find('id', 'cli-app');
    assert.equal(stored?.ok && stored.app.secret, secret);
    await cli('disable', 'cli-app');
    assert.match((await cli('list')).stdout, /cli-app\tkey \S+\tdisabled/);
    await cli('delete', 'cli-app');
    await assert.rejects(cli('delete', 'cli-app'), (err: { code?: number; stderr?: string }) => err.code === 1 && /no app with id/.test(err.stderr ?? ''));
  });

  it('the apps CLI, given the cluster settings, tells every node at once: a disable closes open connections on both nodes', { timeout: 30_000 }, async () => {
    const live = appSchema.parse({ id: 'cli-live', key: 'cli-live-key', secret: 'cli-live-secret-0123456789' });
    await h.store.insert(live);
    const clients = await Promise.all([a, b].map((server) => RawClient.connect(server, `/app/${live.key}?${PROTOCOL_QUERY}`)));
    const env = {
      ...process.env,
      SWITCHBOARD_APP_STORE: 'postgres',
      SWITCHBOARD_APP_STORE_URL: POSTGRES_URL,
      SWITCHBOARD_APP_STORE_TABLE: String(h.config.appStoreTable),
      SWITCHBOARD_ADAPTER: 'redis',
      SWITCHBOARD_CLUSTER_PREFIX: clusterPrefix,
    };
    const { stderr } = await run(process.execPath, ['dist/src/cli/main.js', 'apps', 'disable', live.id], { env });
    assert.equal(stderr, '', 'the cluster was told');
    // The TTL is a minute: closed within seconds, only the CLI's notice explains it.
    const closedSoon = (client: RawClient): Promise<number | string> =>
      Promise.race([client.closed, new Promise<string>((resolve) => setTimeout(() => resolve('still open after 10 s'), 10_000).unref())]);
    assert.deepEqual(await Promise.all(clients.map(closedSoon)), [4003, 4003]);
  });
});
