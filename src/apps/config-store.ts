import type { AppConfig } from '../config/schema.js';
import { AppStoreError, type LookupField, type StoredApp } from './columns.js';
import type { AppStore } from './store.js';

const READ_ONLY = 'apps come from the configuration file (appStore "config"), which is read-only at run time: set appStore to postgres, mysql or dynamodb to manage apps while the server runs';

/** Today's behaviour: the apps of the config file and SWITCHBOARD_APP_*, fixed at start. */
export class ConfigAppStore implements AppStore {
  readonly kind = 'config';

  constructor(private readonly apps: readonly AppConfig[]) {}

  async init(): Promise<void> {}

  async find(by: LookupField, value: string): Promise<StoredApp | undefined> {
    const app = this.apps.find((a) => a[by] === value);
    return app ? { ok: true, app } : undefined;
  }

  async list(): Promise<StoredApp[]> {
    return this.apps.map((app) => ({ ok: true, app }));
  }

  insert(): Promise<void> {
    return Promise.reject(new AppStoreError(READ_ONLY, 405));
  }

  replace(): Promise<boolean> {
    return Promise.reject(new AppStoreError(READ_ONLY, 405));
  }

  remove(): Promise<boolean> {
    return Promise.reject(new AppStoreError(READ_ONLY, 405));
  }

  async close(): Promise<void> {}
}
