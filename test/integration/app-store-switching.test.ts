import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Pool as MysqlPool } from 'mysql2/promise';
import type { Pool as PgPool } from 'pg';
import { createServer, type Switchboard } from '../../src/index.js';
import type { App } from '../../src/core/app.js';
import { MYSQL_URL, POSTGRES_URL, reachable, uniqueTable } from '../helpers/app-stores.js';
import { connected, pusherClient, serverSdk } from '../helpers/clients.js';

/** Tables as soketi and Sockudo create them (their column names and types), read unchanged. */
const SOKETI_POSTGRES = (t: string): string => `CREATE TABLE ${t} (
  id varchar(255) PRIMARY KEY, "key" varchar(255) NOT NULL, secret varchar(255) NOT NULL,
  max_connections integer NOT NULL, enable_stats smallint NOT NULL, enable_client_messages smallint NOT NULL, enabled smallint NOT NULL,
  max_backend_events_per_sec integer NOT NULL, max_client_events_per_sec integer NOT NULL, max_read_req_per_sec integer NOT NULL,
  webhooks json, max_presence_members_per_channel integer NULL, max_presence_member_size_in_kb integer NULL,
  max_channel_name_length integer NULL, max_event_channels_at_once integer NULL, max_event_name_length integer NULL,
  max_event_payload_in_kb integer NULL, max_event_batch_size integer NULL, enable_user_authentication smallint NULL)`;

const SOCKUDO_MYSQL = (t: string): string => `CREATE TABLE \`${t}\` (
  id VARCHAR(255) PRIMARY KEY, \`key\` VARCHAR(255) UNIQUE NOT NULL, secret VARCHAR(255) NOT NULL,
  max_connections INT UNSIGNED NOT NULL, enable_client_messages BOOLEAN NOT NULL DEFAULT FALSE, enabled BOOLEAN NOT NULL DEFAULT TRUE,
  max_backend_events_per_second INT UNSIGNED NULL, max_client_events_per_second INT UNSIGNED NOT NULL, max_read_requests_per_second INT UNSIGNED NULL,
  max_presence_members_per_channel INT UNSIGNED NULL, max_presence_member_size_in_kb INT UNSIGNED NULL, max_channel_name_length INT UNSIGNED NULL,
  max_event_channels_at_once INT UNSIGNED NULL, max_event_name_length INT UNSIGNED NULL, max_event_payload_in_kb INT UNSIGNED NULL,
  max_event_batch_size INT UNSIGNED NULL, enable_user_authentication BOOLEAN NULL, enable_watchlist_events BOOLEAN NULL,
  webhooks JSON NULL, allowed_origins JSON NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)`;

async function serve(config: Record<string, unknown>, key: string): Promise<{ server: Switchboard; app: App }> {
  const server = await createServer({ host: '127.0.0.1', port: 0, logLevel: 'silent', ...config });
  const app = await server.apps.byKey(key);
  assert.ok(app, 'the app is found');
  const client = pusherClient(server, { key, sdk: serverSdk(server, app) });
  await connected(client);
  client.disconnect();
  return { server, app };
}

describe('switching unchanged: a soketi table (PostgreSQL)', { skip: await reachable(5432, 'PostgreSQL') }, () => {
  const table = uniqueTable('soketi');
  let pool: PgPool | undefined;
  after(async () => {
    await pool?.query(`DROP TABLE IF EXISTS ${table}`);
    await pool?.end();
  });

  it('is read as it is: -1 means no limit, KiB sizes become bytes, soketi webhooks map; pusher-js connects', async () => {
    const pg = (await import('pg')).default;
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    await pool.query(SOKETI_POSTGRES(table));
    await pool.query(
      `INSERT INTO ${table} (id, "key", secret, max_connections, enable_stats, enable_client_messages, enabled, max_backend_events_per_sec, max_client_events_per_sec, max_read_req_per_sec, webhooks, max_presence_member_size_in_kb, max_event_payload_in_kb)
       VALUES ('app-id', 'app-key', 'app-secret', -1, 0, 1, 1, -1, -1, -1, $1, 2, 100)`,
      [JSON.stringify([{ url: 'http://127.0.0.1:9/hook', event_types: ['channel_occupied'], filter: { channel_name_starts_with: 'orders-' }, headers: { 'X-Key': 'v' } }])],
    );
    const { server, app } = await serve({ appStore: 'postgres', appStoreUrl: POSTGRES_URL, appStoreTable: table, adminToken: 'admin-token-0123456789' }, 'app-key');
    try {
      assert.equal(app.maxConnections, 0);
      assert.equal(app.apiRequestsPerSecond, 0);
      assert.equal(app.clientEventsPerSecond, 1_000_000);
      assert.equal(app.enableClientMessages, true);
      assert.equal(app.maxPresenceUserInfoBytes, 2048);
      assert.equal(app.maxEventDataBytes, 100 * 1024);
      assert.deepEqual(app.webhooks, [{ url: 'http://127.0.0.1:9/hook', events: ['channel_occupied'], channelPrefix: 'orders-', headers: { 'X-Key': 'v' }, batch: false }]);
      // Writes go to soketi's own columns.
      const reply = await fetch(`${server.url}/admin/apps/app-id/rotate-secret`, { method: 'POST', headers: { Authorization: 'Bearer admin-token-0123456789' } });
      assert.equal(reply.status, 200);
      const { rows } = await pool.query<{ secret: string; enabled: number }>(`SELECT secret, enabled FROM ${table} WHERE id = 'app-id'`);
      assert.notEqual(rows[0]?.secret, 'app-secret');
      assert.equal(rows[0]?.enabled, 1);
    } finally {
      await server.close();
    }
  });
});

describe('switching unchanged: a Sockudo table (MySQL/MariaDB)', { skip: await reachable(3306, 'MariaDB/MySQL') }, () => {
  const table = uniqueTable('sockudo');
  let pool: MysqlPool | undefined;
  after(async () => {
    await pool?.query(`DROP TABLE IF EXISTS \`${table}\``);
    await pool?.end();
  });

  it('is read as it is (their _per_second names, JSON origins); pusher-js connects', async () => {
    const mysql = await import('mysql2/promise');
    pool = mysql.createPool({ uri: MYSQL_URL, connectionLimit: 1 });
    await pool.query(SOCKUDO_MYSQL(table));
    await pool.query(
      `INSERT INTO \`${table}\` (id, \`key\`, secret, max_connections, enable_client_messages, enabled, max_backend_events_per_second, max_client_events_per_second, max_presence_members_per_channel, allowed_origins, enable_watchlist_events)
       VALUES ('sk-id', 'sk-key', 'sk-secret', 50, 1, 1, 20, 30, 7, ?, 1)`,
      [JSON.stringify([])],
    );
    const { server, app } = await serve({ appStore: 'mysql', appStoreUrl: MYSQL_URL, appStoreTable: table }, 'sk-key');
    try {
      assert.equal(app.maxConnections, 50);
      assert.equal(app.apiRequestsPerSecond, 20);
      assert.equal(app.clientEventsPerSecond, 30);
      assert.equal(app.maxPresenceMembers, 7);
      assert.deepEqual(app.allowedOrigins, []);
    } finally {
      await server.close();
    }
  });
});
