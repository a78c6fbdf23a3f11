import pg from 'pg';
import type { SqlDialect } from './sql-store.js';

export interface SqlConnectionOptions {
  readonly url: string;
  /** A query (or a connection) slower than this fails: a slow database counts as down. */
  readonly timeoutMs: number;
  readonly onError: (err: Error) => void;
}

/** PostgreSQL through `pg`: a small pool, `$n` parameters. */
export function postgresDialect({ url, timeoutMs, onError }: SqlConnectionOptions): SqlDialect {
  const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, idleTimeoutMillis: 30_000 });
  // An idle client losing its server must not end the process: the next query reports it.
  pool.on('error', onError);
  return {
    kind: 'postgres',
    quote: (id) => `"${id.replace(/"/g, '""')}"`,
    param: (i) => `$${i}`,
    async query(sql, params) {
      const result = await pool.query(sql, params as unknown[]);
      return { rows: result.rows as Record<string, unknown>[], affected: result.rowCount ?? 0 };
    },
    async columns(table) {
      const { rows } = await pool.query<{ column_name: string }>(
        'SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1',
        [table],
      );
      return rows.map((r) => r.column_name);
    },
    columnType: (kind, indexed) => ({ text: indexed ? 'VARCHAR(255)' : 'TEXT', bool: 'BOOLEAN', int: 'BIGINT', json: 'JSONB' })[kind],
    isDuplicate: (err) => (err as { code?: string }).code === '23505',
    json: (value) => JSON.stringify(value),
    close: () => pool.end(),
  };
}
