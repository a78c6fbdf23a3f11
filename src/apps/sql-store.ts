import type { AppConfig } from '../config/schema.js';
import { AppStoreError, COLUMNS, LOOKUP_COLUMN, appFromRow, rowFromApp, type LookupField, type StoredApp } from './columns.js';
import type { AppStore } from './store.js';

/** What differs between PostgreSQL and MySQL/MariaDB: quoting, placeholders, types, the driver. */
export interface SqlDialect {
  readonly kind: string;
  quote(identifier: string): string;
  /** The placeholder of the i-th parameter (1-based). */
  param(i: number): string;
  /** Values always travel as parameters, never inside the SQL text. */
  query(sql: string, params: readonly unknown[]): Promise<{ rows: Record<string, unknown>[]; affected: number }>;
  /** Column names of `table` in the current schema/database. */
  columns(table: string): Promise<string[]>;
  /** `indexed`: the id, key and API token columns, which MySQL indexes only when they are VARCHAR. */
  columnType(kind: 'text' | 'bool' | 'int' | 'json', indexed: boolean): string;
  isDuplicate(err: unknown): boolean;
  /** A JSON value as the driver wants it for a JSON column. */
  json(value: unknown): unknown;
  close(): Promise<void>;
}

const KIND_OF = new Map(COLUMNS.flatMap((c) => [c.name, ...(c.aliases ?? []).map((a) => a.name)].map((name) => [name, c.kind] as const)));

/** The app store over one SQL table; every value is a query parameter. */
export class SqlAppStore implements AppStore {
  private tableColumns: Set<string> | undefined;

  constructor(
    private readonly dialect: SqlDialect,
    private readonly table: string,
  ) {}

  get kind(): string {
    return this.dialect.kind;
  }

  async init(): Promise<void> {
    const d = this.dialect;
    const columns = COLUMNS.map((c) => {
      const constraint = c.field === 'id' ? ' PRIMARY KEY' : c.field === 'key' ? ' NOT NULL UNIQUE' : c.field === 'apiToken' ? ' UNIQUE' : '';
      return `${d.quote(c.name)} ${d.columnType(c.kind, constraint !== '')}${constraint}`;
    });
    await d.query(`CREATE TABLE IF NOT EXISTS ${d.quote(this.table)} (${columns.join(', ')})`, []);
    this.tableColumns = undefined;
  }

  async find(by: LookupField, value: string): Promise<StoredApp | undefined> {
    const column = LOOKUP_COLUMN[by];
    if (by === 'apiToken' && !(await this.columns()).has(column)) return undefined; // a soketi table has no API tokens
    const d = this.dialect;
    const { rows } = await d.query(`SELECT * FROM ${d.quote(this.table)} WHERE ${d.quote(column)} = ${d.param(1)}`, [value]);
    return rows[0] ? appFromRow(rows[0]) : undefined;
  }

  async list(): Promise<StoredApp[]> {
    const d = this.dialect;
    const { rows } = await d.query(`SELECT * FROM ${d.quote(this.table)} ORDER BY ${d.quote('id')}`, []);
    return rows.map(appFromRow);
  }

  async insert(app: AppConfig): Promise<void> {
    const row = await this.rowOf(app);
    const names = Object.keys(row);
    const d = this.dialect;
    const sql = `INSERT INTO ${d.quote(this.table)} (${names.map((n) => d.quote(n)).join(', ')}) VALUES (${names.map((_, i) => d.param(i + 1)).join(', ')})`;
    try {
      await d.query(sql, Object.values(row));
    } catch (err) {
      if (d.isDuplicate(err)) throw new AppStoreError('an app with this id, key or API token exists already', 409);
      throw err;
    }
  }

  async replace(app: AppConfig): Promise<boolean> {
    const row = await this.rowOf(app);
    const names = Object.keys(row).filter((n) => n !== 'id');
    const d = this.dialect;
    const sets = names.map((n, i) => `${d.quote(n)} = ${d.param(i + 1)}`).join(', ');
    const sql = `UPDATE ${d.quote(this.table)} SET ${sets} WHERE ${d.quote('id')} = ${d.param(names.length + 1)}`;
    try {
      return (await d.query(sql, [...names.map((n) => row[n]), app.id])).affected > 0;
    } catch (err) {
      if (d.isDuplicate(err)) throw new AppStoreError('another app has this key or API token', 409);
      throw err;
    }
  }

  async remove(id: string): Promise<boolean> {
    const d = this.dialect;
    return (await d.query(`DELETE FROM ${d.quote(this.table)} WHERE ${d.quote('id')} = ${d.param(1)}`, [id])).affected > 0;
  }

  close(): Promise<void> {
    return this.dialect.close();
  }

  private async columns(): Promise<Set<string>> {
    this.tableColumns ??= new Set(await this.dialect.columns(this.table));
    return this.tableColumns;
  }

  private async rowOf(app: AppConfig): Promise<Record<string, unknown>> {
    const existing = await this.columns();
    if (existing.size === 0) throw new AppStoreError(`table ${this.table} does not exist: run "switchboard apps init"`, 503);
    const row = rowFromApp(app, existing);
    for (const [name, value] of Object.entries(row)) {
      if (value === null) continue;
      const kind = KIND_OF.get(name);
      // 1/0 suit a BOOLEAN column on both databases and soketi's SMALLINT/TINYINT ones.
      if (kind === 'bool' || typeof value === 'boolean') row[name] = value ? 1 : 0; // a flag of theirs for a setting of ours too
      else if (kind === 'json') row[name] = this.dialect.json(value);
    }
    return row;
  }
}
