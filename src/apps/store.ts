import type { AppConfig } from '../config/schema.js';
import type { LookupField, StoredApp } from './columns.js';

/**
 * Where apps live. One contract suite (test/contract/app-store.contract.ts) runs on every
 * implementation. Reads return rows as found, each one validated on its own; writes take apps
 * already validated by the caller (see manage.ts).
 */
export interface AppStore {
  /** `config`, `postgres`, `mysql` or `dynamodb`. */
  readonly kind: string;
  /** Creates the table (and indexes) when missing; safe to run again. */
  init(): Promise<void>;
  find(by: LookupField, value: string): Promise<StoredApp | undefined>;
  list(): Promise<StoredApp[]>;
  /** Adds an app; an AppStoreError (409) when its id, key or API token is taken. */
  insert(app: AppConfig): Promise<void>;
  /** Replaces the app of the same id; false when there is none. */
  replace(app: AppConfig): Promise<boolean>;
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}
