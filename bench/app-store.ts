// The app in a database table for the run (--app-store), and the queries that reached it.

import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { createAppStore } from '../src/apps/create.js';
import { validateConfig } from '../src/config/load.js';
import { appSchema } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import type { AppCredentials } from './pusher-sign.js';

const LOCAL_URL = { postgres: 'postgres://postgres@127.0.0.1:5432/test', mysql: 'mysql://root@127.0.0.1:3306/test' } as const;

export interface BenchAppStore {
  /** Environment for the spawned server. */
  readonly env: Record<string, string>;
  readonly description: string;
  /** Queries the server has sent to the store so far (from its Prometheus counter). */
  queries(): Promise<number>;
  /** Drops the table. */
  close(): Promise<void>;
}

/** Creates a table of its own with the bench app in it; the server gets a metrics port to report its queries. */
export async function prepareAppStore(kind: 'postgres' | 'mysql', url: string | undefined, creds: AppCredentials, metricsPort: number): Promise<BenchAppStore> {
  const table = `bench_apps_${randomBytes(4).toString('hex')}`;
  const settings = { appStore: kind, appStoreUrl: url ?? LOCAL_URL[kind], appStoreTable: table } as const;
  const store = await createAppStore(validateConfig(settings), createLogger('silent'));
  await store.init();
  await store.insert(appSchema.parse({ id: creds.appId, key: creds.key, secret: creds.secret, enableClientMessages: true }));
  return {
    env: {
      SWITCHBOARD_APP_STORE: kind,
      SWITCHBOARD_APP_STORE_URL: settings.appStoreUrl,
      SWITCHBOARD_APP_STORE_TABLE: table,
      SWITCHBOARD_METRICS_PORT: String(metricsPort),
      SWITCHBOARD_METRICS_HOST: '127.0.0.1',
    },
    description: `${kind} table ${table}`,
    queries: () => readCounter(metricsPort, 'switchboard_app_store_queries_total'),
    close: async () => {
      await store.close();
      await dropTable(kind, settings.appStoreUrl, table);
    },
  };
}

export function readCounter(port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/metrics', timeout: 5_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const line = text.split('\n').find((l) => l.startsWith(`${name} `));
        resolve(line ? Number(line.split(' ')[1]) : Number.NaN);
      });
    })
      .on('error', reject)
      .on('timeout', function (this: { destroy(): void }) {
        this.destroy();
      });
  });
}

async function dropTable(kind: 'postgres' | 'mysql', url: string, table: string): Promise<void> {
  if (kind === 'postgres') {
    const pg = (await import('pg')).default;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP TABLE IF EXISTS "${table}"`).finally(() => client.end());
  } else {
    const mysql = await import('mysql2/promise');
    const conn = await mysql.createConnection({ uri: url });
    await conn.query(`DROP TABLE IF EXISTS \`${table}\``).finally(() => conn.end());
  }
}
