import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Pool as MysqlPool } from 'mysql2/promise';
import type { Pool as PgPool } from 'pg';
import { createServer, type Switchboard } from '../../src/index.js';
import type { App } from '../../src/core/app.js';
import { MYSQL_URL, POSTGRES_URL, reachable, startDynalite, uniqueTable } from '../helpers/app-stores.js';
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

describe('switching unchanged: a soketi table (PostgreSQL)', { skip: await reachable(5432, 'PostgreSQL'), timeout: 30_000 }, () => {
  const table = uniqueTable('soketi');
  let pool: PgPool | undefined;
  after(async () => {
    await pool?.query(`DROP TABLE IF EXISTS ${table}`);
    await pool?.end();
  });

  it('is read as it is: -1 means no limit, KiB sizes become bytes, soketi webhooks map, enable_user_authentication is signIn; pusher-js connects', async () => {
    const pg = (await import('pg')).default;
    pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
    await pool.query(SOKETI_POSTGRES(table));
    await pool.query(
      `INSERT INTO ${table} (id, "key", secret, max_connections, enable_stats, enable_client_messages, enabled, max_backend_events_per_sec, max_client_events_per_sec, max_read_req_per_sec, webhooks, max_presence_member_size_in_kb, max_event_payload_in_kb, enable_user_authentication)
       VALUES ('app-id', 'app-key', 'app-secret', -1, 0, 1, 1, -1, -1, -1, $1, 2, 100, 1)`,
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
      assert.equal(app.signIn, 'required', 'enable_user_authentication 1: sign in within the timeout or 4009, as soketi does');
      // Writes go to soketi's own columns.
      const admin = { Authorization: 'Bearer admin-token-0123456789' };
      const reply = await fetch(`${server.url}/admin/apps/app-id/rotate-secret`, { method: 'POST', headers: admin });
      assert.equal(reply.status, 200);
      const { rows } = await pool.query<{ secret: string; enabled: number; enable_user_authentication: number }>(`SELECT secret, enabled, enable_user_authentication FROM ${table} WHERE id = 'app-id'`);
      assert.notEqual(rows[0]?.secret, 'app-secret');
      assert.equal(rows[0]?.enabled, 1);
      assert.equal(rows[0]?.enable_user_authentication, 1);
      // Their flag has no "disabled": refused with the reason rather than written as something else.
      const disabled = await fetch(`${server.url}/admin/apps/app-id`, { method: 'PATCH', headers: admin, body: JSON.stringify({ signIn: 'disabled' }) });
      assert.equal(disabled.status, 400);
      assert.match(await disabled.text(), /enable_user_authentication/);
      const allowed = await fetch(`${server.url}/admin/apps/app-id`, { method: 'PATCH', headers: admin, body: JSON.stringify({ signIn: 'allowed' }) });
      assert.equal(allowed.status, 200);
      const after = await pool.query<{ enable_user_authentication: number }>(`SELECT enable_user_authentication FROM ${table} WHERE id = 'app-id'`);
      assert.equal(after.rows[0]?.enable_user_authentication, 0);
    } finally {
      await server.close();
    }
  });
});

describe('switching unchanged: a Sockudo table (MySQL/MariaDB)', { skip: await reachable(3306, 'MariaDB/MySQL'), timeout: 30_000 }, () => {
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
      `INSERT INTO \`${table}\` (id, \`key\`, secret, max_connections, enable_client_messages, enabled, max_backend_events_per_second, max_client_events_per_second, max_presence_members_per_channel, allowed_origins, enable_watchlist_events, enable_user_authentication)
       VALUES ('sk-id', 'sk-key', 'sk-secret', 50, 1, 1, 20, 30, 7, ?, 1, 0)`,
      [JSON.stringify([])],
    );
    const { server, app } = await serve({ appStore: 'mysql', appStoreUrl: MYSQL_URL, appStoreTable: table }, 'sk-key');
    try {
      assert.equal(app.maxConnections, 50);
      assert.equal(app.apiRequestsPerSecond, 20);
      assert.equal(app.clientEventsPerSecond, 30);
      assert.equal(app.maxPresenceMembers, 7);
      assert.deepEqual(app.allowedOrigins, []);
      assert.equal(app.signIn, 'disabled', "Sockudo's enable_user_authentication 0: pusher:signin refused (soketi's 0 would be allowed)");
    } finally {
      await server.close();
    }
  });
});

/**
 * A table as soketi's DynamoDB app manager reads it (its documentation's schema): hash key
 * `AppId`, index `AppKeyIndex` on `AppKey`, PascalCase attributes, flags as binary "true" /
 * "false", webhooks as a JSON string.
 */
describe('switching unchanged: a soketi DynamoDB table (dynalite)', { timeout: 30_000 }, () => {
  it('is read as it is: by key and by id, flags, -1, KiB sizes, JSON webhooks, EnableUserAuthentication; writes keep its layout', async () => {
    const dynalite = await startDynalite();
    const { CreateTableCommand, DynamoDBClient, GetItemCommand, PutItemCommand } = await import('@aws-sdk/client-dynamodb');
    const raw = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });
    const table = uniqueTable('soketi_dynamo');
    try {
      await raw.send(
        new CreateTableCommand({
          TableName: table,
          AttributeDefinitions: [
            { AttributeName: 'AppId', AttributeType: 'S' },
            { AttributeName: 'AppKey', AttributeType: 'S' },
          ],
          KeySchema: [{ AttributeName: 'AppId', KeyType: 'HASH' }],
          GlobalSecondaryIndexes: [{ IndexName: 'AppKeyIndex', KeySchema: [{ AttributeName: 'AppKey', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      const flag = (v: string): { B: Uint8Array } => ({ B: Buffer.from(v) });
      await raw.send(
        new PutItemCommand({
          TableName: table,
          Item: {
            AppId: { S: 'dyn-id' },
            AppKey: { S: 'dyn-key' },
            AppSecret: { S: 'dyn-secret' },
            MaxConnections: { N: '-1' },
            EnableClientMessages: flag('true'),
            Enabled: flag('true'),
            MaxBackendEventsPerSecond: { N: '-1' },
            MaxClientEventsPerSecond: { N: '25' },
            MaxReadRequestsPerSecond: { N: '-1' },
            MaxPresenceMembersPerChannel: { N: '9' },
            MaxPresenceMemberSizeInKb: { N: '3' },
            MaxEventPayloadInKb: { N: '50' },
            MaxEventBatchSize: { N: '4' },
            Webhooks: { S: JSON.stringify([{ url: 'http://127.0.0.1:9/hook', event_types: ['member_added'] }]) },
            EnableUserAuthentication: { BOOL: true },
          },
        }),
      );
      const config = { appStore: 'dynamodb', appStoreTable: table, appStoreRegion: 'us-east-1', appStoreEndpoint: dynalite.endpoint, adminToken: 'admin-token-0123456789' };
      const { server, app } = await serve(config, 'dyn-key');
      try {
        assert.equal(app.id, 'dyn-id');
        assert.equal(app.secret, 'dyn-secret');
        assert.equal(app.maxConnections, 0);
        assert.equal(app.enableClientMessages, true);
        assert.equal(app.apiRequestsPerSecond, 0);
        assert.equal(app.clientEventsPerSecond, 25);
        assert.equal(app.maxPresenceMembers, 9);
        assert.equal(app.maxPresenceUserInfoBytes, 3 * 1024);
        assert.equal(app.maxEventDataBytes, 50 * 1024);
        assert.equal(app.maxBatchSize, 4);
        assert.equal(app.signIn, 'required');
        assert.deepEqual(app.webhooks, [{ url: 'http://127.0.0.1:9/hook', events: ['member_added'], headers: {}, batch: false }]);
        // The REST API finds it by id (the AppId hash key): the SDK's call is answered.
        await serverSdk(server, app).trigger('news', 'update', { ok: true });
        // A write keeps soketi's spelling, so soketi could still read the item.
        const reply = await fetch(`${server.url}/admin/apps/dyn-id/rotate-secret`, { method: 'POST', headers: { Authorization: 'Bearer admin-token-0123456789' } });
        assert.equal(reply.status, 200);
        const { Item } = await raw.send(new GetItemCommand({ TableName: table, Key: { AppId: { S: 'dyn-id' } } }));
        assert.ok(Item?.['AppSecret']?.S && Item['AppSecret'].S !== 'dyn-secret', 'the secret rotated in AppSecret');
        assert.equal(Item['AppKey']?.S, 'dyn-key');
        assert.equal(Item['id'], undefined, 'no attribute of our own spelling added for the key schema');
        assert.equal(Item['EnableUserAuthentication']?.BOOL, true);
      } finally {
        await server.close();
      }
    } finally {
      raw.destroy();
      await dynalite.close();
    }
  });
});
