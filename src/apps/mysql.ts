import mysql from 'mysql2/promise';
import type { SqlConnectionOptions } from './postgres.js';
import type { SqlDialect } from './sql-store.js';

/** MySQL and MariaDB through `mysql2`: a small pool, `?` parameters sent as prepared statements. */
export function mysqlDialect({ url, timeoutMs }: SqlConnectionOptions): SqlDialect {
  const pool = mysql.createPool({ uri: url, connectionLimit: 4, connectTimeout: timeoutMs, maxIdle: 4, idleTimeout: 30_000, enableKeepAlive: true });
  const run = async (sql: string, params: readonly unknown[]): Promise<{ rows: Record<string, unknown>[]; affected: number }> => {
    // Our values are strings, numbers and null (booleans as 1/0, JSON as text), which the driver takes.
    const [result] = await pool.execute({ sql, timeout: timeoutMs }, params as (string | number | null)[]);
    if (Array.isArray(result)) return { rows: result as Record<string, unknown>[], affected: 0 };
    return { rows: [], affected: (result as { affectedRows?: number }).affectedRows ?? 0 };
  };
  return {
    kind: 'mysql',
    quote: (id) => `\`${id.replace(/`/g, '``')}\``,
    param: () => '?',
    query: run,
    async columns(table) {
      const { rows } = await run('SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?', [table]);
      return rows.map((r) => String(r['name']));
    },
    // Indexed text stays VARCHAR: MySQL indexes no TEXT column without a prefix length.
    columnType: (kind, indexed) => ({ text: indexed ? 'VARCHAR(255)' : 'TEXT', bool: 'BOOLEAN', int: 'BIGINT', json: 'JSON' })[kind],
    isDuplicate: (err) => (err as { code?: string }).code === 'ER_DUP_ENTRY',
    json: (value) => JSON.stringify(value),
    close: () => pool.end(),
  };
}
