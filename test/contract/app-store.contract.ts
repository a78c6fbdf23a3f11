import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { AppStoreError } from '../../src/apps/columns.js';
import { appSchema, type AppConfig } from '../../src/config/schema.js';
import { createServer, type Switchboard } from '../../src/index.js';
import { openStore, type StoreHarness } from '../helpers/app-stores.js';
import { connected, pusherClient, serverSdk, subscribed, RawClient } from '../helpers/clients.js';
import { channelAuth, PROTOCOL_QUERY } from '../helpers/raw-pusher.js';
import { eventually } from '../helpers/wait.js';

/** What a store runner says: its name, and why it cannot run here (a database not reachable). */
export interface StoreUnderTest {
  readonly name: 'config' | 'postgres' | 'mysql' | 'dynamodb';
  unavailable(): Promise<string | undefined>;
}

const app = (id: string, extra: Partial<AppConfig> = {}): AppConfig => appSchema.parse({ id, key: `${id}-key`, secret: `${id}-secret-0123456789`, ...extra });

const HOSTILE = [`x' OR '1'='1`, `"; DROP TABLE apps; --`, "k`; SELECT 1; --", `\\' UNION SELECT * FROM apps --`];

/** One contract for every app store: the same cases on config, PostgreSQL, MySQL/MariaDB and DynamoDB. */
export async function appStoreSuite(sut: StoreUnderTest): Promise<void> {
  const skip = await sut.unavailable();
  await describe(`app store contract: ${sut.name}`, { skip }, async () => {
    const seed = [app('alpha', { apiToken: 'alpha-api-token-0123456789', maxConnections: 7, webhooks: [{ url: 'http://127.0.0.1:9/hook', headers: {}, batch: false }] }), app('beta')];
    let h: StoreHarness;
    before(async () => {
      h = await openStore(sut.name, seed);
    });
    after(() => h.close());

    it('finds an app by id, key and API token, with every setting as written; unknown values find nothing', async () => {
      for (const [by, value] of [['id', 'alpha'], ['key', 'alpha-key'], ['apiToken', 'alpha-api-token-0123456789']] as const) {
        const found = await h.store.find(by, value);
        assert.deepEqual(found, { ok: true, app: seed[0] }, `by ${by}`);
      }
      assert.equal(await h.store.find('key', 'nope'), undefined);
      assert.equal(await h.store.find('id', 'alpha-key'), undefined);
      const listed = await h.store.list();
      assert.deepEqual(listed.map((s) => (s.ok ? s.app.id : s.id)), ['alpha', 'beta']);
    });

    it('takes keys with quotes and SQL fragments as values, never as SQL', async () => {
      for (const hostile of HOSTILE) {
        assert.equal(await h.store.find('key', hostile), undefined, hostile);
        assert.equal(await h.store.find('id', hostile), undefined, hostile);
      }
      assert.equal((await h.store.list()).length, 2, 'the table is intact');
      if (sut.name === 'config') return;
      const odd = app('odd', { key: HOSTILE[0] });
      await h.store.insert(odd);
      assert.deepEqual(await h.store.find('key', HOSTILE[0]), { ok: true, app: odd });
      assert.ok(await h.store.remove('odd'));
    });

    it('writes: insert, replace and remove; a taken id or key is refused with 409 (the config store refuses every write with 405)', async () => {
      const gamma = app('gamma');
      if (sut.name === 'config') {
        await assert.rejects(h.store.insert(gamma), (err: unknown) => err instanceof AppStoreError && err.status === 405 && /read-only/.test(err.message));
        await assert.rejects(h.store.remove('alpha'), (err: unknown) => err instanceof AppStoreError && err.status === 405);
        return;
      }
      await h.store.insert(gamma);
      await assert.rejects(h.store.insert(gamma), (err: unknown) => err instanceof AppStoreError && err.status === 409);
      await assert.rejects(h.store.insert(app('gamma2', { key: 'gamma-key' })), (err: unknown) => err instanceof AppStoreError && err.status === 409);
      const changed = { ...gamma, secret: 'rotated-secret-0123456789', enabled: false, allowedOrigins: ['https://a.example'], channelPasswords: { room: 'pw' } };
      assert.equal(await h.store.replace(changed), true);
      assert.deepEqual(await h.store.find('key', 'gamma-key'), { ok: true, app: changed });
      assert.equal(await h.store.replace(app('missing')), false);
      assert.equal(await h.store.remove('gamma'), true);
      assert.equal(await h.store.remove('gamma'), false);
      assert.equal(await h.store.find('id', 'gamma'), undefined);
      await h.store.init(); // idempotent: the table and its apps stay
      assert.equal((await h.store.list()).length, 2);
    });

    it('refuses a row that fails validation, naming the column and why; other rows are served', { skip: sut.name === 'config' ? 'the config file is validated at start' : false }, async () => {
      await h.insertRow?.({ id: 'bad', key: 'bad-key', secret: 'short', max_presence_members_per_channel: -3 });
      const bad = await h.store.find('key', 'bad-key');
      assert.equal(bad?.ok, false);
      assert.match(bad && !bad.ok ? bad.reason : '', /max_presence_members_per_channel/);
      assert.equal((await h.store.find('key', 'beta-key'))?.ok, true);
      await h.store.remove('bad');
    });

    it('pusher-js connects with an app added while the server runs; a rotated secret signs from then on; a disabled app is closed (4003) within the TTL', { timeout: 30_000 }, async () => {
      const server: Switchboard = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', appCacheTtlMs: 300, adminToken: 'admin-token-0123456789', ...h.config });
      try {
        const live = app('live', { enableClientMessages: true });
        if (sut.name === 'config') {
          const reply = await fetch(`${server.url}/admin/apps`, { method: 'POST', headers: { Authorization: 'Bearer admin-token-0123456789' }, body: JSON.stringify(live) });
          assert.equal(reply.status, 405);
          const client = pusherClient(server, { key: 'alpha-key', sdk: serverSdk(server, seed[0]) });
          await connected(client);
          client.disconnect();
          return;
        }
        await h.store.insert(live); // straight into the database, the server running
        const client = pusherClient(server, { key: live.key, sdk: serverSdk(server, live) });
        await connected(client);
        await subscribed(client, 'private-before');
        const raw = await RawClient.connect(server, `/app/${live.key}?${PROTOCOL_QUERY}`);
        const socketId = await raw.socketId();

        // Rotated through the admin API: the open connection signs with the new secret at once.
        const rotated = await fetch(`${server.url}/admin/apps/live/rotate-secret`, { method: 'POST', headers: { Authorization: 'Bearer admin-token-0123456789' } });
        assert.equal(rotated.status, 200);
        const secret = ((await rotated.json()) as { app: AppConfig }).app.secret;
        assert.notEqual(secret, live.secret);
        raw.send({ event: 'pusher:subscribe', data: { channel: 'private-old', auth: channelAuth(socketId, 'private-old', undefined, live) } });
        assert.equal((await raw.event('pusher:subscription_error')).channel, 'private-old');
        raw.send({ event: 'pusher:subscribe', data: { channel: 'private-new', auth: channelAuth(socketId, 'private-new', undefined, { ...live, secret }) } });
        assert.equal((await raw.event('pusher_internal:subscription_succeeded')).channel, 'private-new');

        // Disabled in the database directly: seen within the TTL, open connections closed with 4003.
        await h.store.replace({ ...live, secret, enabled: false });
        assert.equal(await raw.closed, 4003);
        const refused = await RawClient.connect(server, `/app/${live.key}?${PROTOCOL_QUERY}`);
        assert.equal(await refused.closed, 4003);
        await eventually(() => client.connection.state !== 'connected', 'pusher-js disconnected');
        client.disconnect();
      } finally {
        await server.close();
      }
    });
  });
}
