import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ConfigInput } from '../../src/index.js';
import type { AppConfig } from '../../src/config/schema.js';
import { createAppStore } from '../../src/apps/create.js';
import { ConfigAppStore } from '../../src/apps/config-store.js';
import type { AppStore } from '../../src/apps/store.js';
import { validateConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';

export const POSTGRES_URL = process.env['TEST_POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const MYSQL_URL = process.env['TEST_MYSQL_URL'] ?? 'mysql://root@127.0.0.1:3306/test';

/** A table name no other test run (or helper sharing the database) uses. */
export function uniqueTable(label: string): string {
  return `${label}_${randomBytes(5).toString('hex')}`;
}

/** A store under test: its server settings, the store, and a way to write a row as the database holds it. */
export interface StoreHarness {
  readonly name: string;
  /** Settings that point a server at this store. */
  readonly config: Partial<ConfigInput>;
  readonly store: AppStore;
  /** Writes a raw row (columns as named in the table), bypassing validation; absent for the config store. */
  readonly insertRow?: (row: Record<string, unknown>) => Promise<void>;
  /** Runs SQL of the test's own (a soketi-shaped table); SQL stores only. */
  readonly exec?: (sql: string, params?: unknown[]) => Promise<void>;
  close(): Promise<void>;
}

const silent = createLogger('silent');

async function sqlHarness(kind: 'postgres' | 'mysql', table: string, seed: readonly AppConfig[]): Promise<StoreHarness> {
  const url = kind === 'postgres' ? POSTGRES_URL : MYSQL_URL;
  const config = { appStore: kind, appStoreUrl: url, appStoreTable: table } as const;
  const store = await createAppStore(validateConfig(config), silent);
  let exec: (sql: string, params?: unknown[]) => Promise<void>;
  let end: () => Promise<void>;
  if (kind === 'postgres') {
    const pg = (await import('pg')).default;
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    exec = async (sql, params = []) => void (await pool.query(sql, params));
    end = () => pool.end();
  } else {
    const mysql = await import('mysql2/promise');
    const pool = mysql.createPool({ uri: url, connectionLimit: 1 });
    exec = async (sql, params = []) => void (await pool.query(sql, params));
    end = () => pool.end();
  }
  const q = (id: string): string => (kind === 'postgres' ? `"${id}"` : `\`${id}\``);
  await store.init();
  for (const app of seed) await store.insert(app);
  return {
    name: kind,
    config,
    store,
    exec,
    insertRow: async (row) => {
      const names = Object.keys(row);
      const marks = names.map((_, i) => (kind === 'postgres' ? `$${i + 1}` : '?'));
      await exec(`INSERT INTO ${q(table)} (${names.map(q).join(', ')}) VALUES (${marks.join(', ')})`, Object.values(row));
    },
    close: async () => {
      await exec(`DROP TABLE IF EXISTS ${q(table)}`).catch(() => undefined);
      await end();
      await store.close();
    },
  };
}

/** dynalite (DynamoDB on LevelDB in memory) on a free loopback port; close() stops it. */
export async function startDynalite(): Promise<{ readonly endpoint: string; close(): Promise<void> }> {
  // The SDK wants credentials even for a local endpoint; these reach only dynalite.
  process.env['AWS_ACCESS_KEY_ID'] ??= 'switchboard-test';
  process.env['AWS_SECRET_ACCESS_KEY'] ??= 'switchboard-test';
  const dynalite = (await import('dynalite')).default;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A store on dynalite, for one harness. */
async function dynamoHarness(table: string, seed: readonly AppConfig[]): Promise<StoreHarness> {
  const dynalite = await startDynalite();
  const endpoint = dynalite.endpoint;
  const config = { appStore: 'dynamodb', appStoreTable: table, appStoreRegion: 'us-east-1', appStoreEndpoint: endpoint } as const;
  const store = await createAppStore(validateConfig(config), silent);
  await store.init();
  for (const app of seed) await store.insert(app);
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient, PutCommand } = await import('@aws-sdk/lib-dynamodb');
  const raw = new DynamoDBClient({ region: 'us-east-1', endpoint });
  const doc = DynamoDBDocumentClient.from(raw);
  return {
    name: 'dynamodb',
    config,
    store,
    insertRow: async (row) => void (await doc.send(new PutCommand({ TableName: table, Item: row }))),
    close: async () => {
      raw.destroy();
      await store.close();
      await dynalite.close();
    },
  };
}

/** Opens the named store holding `seed`; a fresh table per call. */
export async function openStore(name: string, seed: readonly AppConfig[]): Promise<StoreHarness> {
  const table = uniqueTable('apps');
  switch (name) {
    case 'config':
      return { name, config: { appStore: 'config', apps: [...seed] }, store: new ConfigAppStore(seed), close: () => Promise.resolve() };
    case 'postgres':
    case 'mysql':
      return sqlHarness(name, table, seed);
    case 'dynamodb':
      return dynamoHarness(table, seed);
    default:
      throw new Error(`no store named ${name}`);
  }
}

/** Why the machine's database on `port` cannot be used (undefined when it can). */
export async function reachable(port: number, what: string): Promise<string | undefined> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', () => resolve(`${what} is not running on 127.0.0.1:${port}`));
  });
}
