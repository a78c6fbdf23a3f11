import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { ConfigAppStore } from './config-store.js';
import { SqlAppStore } from './sql-store.js';
import type { AppStore } from './store.js';

/**
 * The store named by `appStore`. Database clients load only when chosen, so a config-file
 * deployment pays for none of them.
 */
export async function createAppStore(config: Config, log: Logger): Promise<AppStore> {
  const connection = {
    url: config.appStoreUrl,
    timeoutMs: config.appStoreTimeoutMs,
    onError: (err: Error) => log.debug({ err: err.message }, 'app store connection lost'),
  };
  switch (config.appStore) {
    case 'config':
      return new ConfigAppStore(config.apps);
    case 'postgres': {
      const { postgresDialect } = await import('./postgres.js');
      return new SqlAppStore(postgresDialect(connection), config.appStoreTable);
    }
    case 'mysql': {
      const { mysqlDialect } = await import('./mysql.js');
      return new SqlAppStore(mysqlDialect(connection), config.appStoreTable);
    }
    case 'dynamodb': {
      const { DynamoDbAppStore } = await import('./dynamodb.js');
      return new DynamoDbAppStore({
        table: config.appStoreTable,
        region: config.appStoreRegion,
        endpoint: config.appStoreEndpoint,
        timeoutMs: config.appStoreTimeoutMs,
      });
    }
  }
}
