import type { App } from '../core/app.js';
import { safeEqual } from '../util/hmac.js';

/** An app at once when it is known here, or a promise of it when a store must be asked. */
export type AppLookup = App | undefined | Promise<App | undefined>;

/** Finds apps by id (HTTP API) or key (WebSocket). */
export interface AppRegistry {
  byId(id: string): AppLookup;
  byKey(key: string): AppLookup;
  /** The app whose native API token this is (compared in constant time). */
  byApiToken(token: string): AppLookup;
  /** Only what is known here without asking (for the hub, whose apps have connections here). */
  cachedById(id: string): App | undefined;
  /** Apps known here (all of them for the config store; the cached ones for a database). */
  all(): readonly App[];
  /** False while the app store cannot be reached (/ready says so). */
  readonly isAvailable: boolean;
  /** Queries sent to the app store so far (0 for the config file). */
  readonly storeQueries: number;
}

/** Apps from the configuration, indexed once. */
export class StaticAppRegistry implements AppRegistry {
  private readonly ids = new Map<string, App>();
  private readonly keys = new Map<string, App>();
  readonly isAvailable = true;
  readonly storeQueries = 0;

  constructor(private readonly apps: readonly App[]) {
    for (const app of apps) {
      this.ids.set(app.id, app);
      this.keys.set(app.key, app);
    }
  }

  byId(id: string): App | undefined {
    return this.ids.get(id);
  }

  cachedById(id: string): App | undefined {
    return this.ids.get(id);
  }

  byKey(key: string): App | undefined {
    return this.keys.get(key);
  }

  byApiToken(token: string): App | undefined {
    let found: App | undefined;
    // Every app is compared, so the time taken says nothing about which one matched.
    for (const app of this.apps) if (app.apiToken !== undefined && safeEqual(app.apiToken, token)) found = app;
    return found;
  }

  all(): readonly App[] {
    return this.apps;
  }
}
