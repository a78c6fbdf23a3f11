import type { App } from '../core/app.js';
import { safeEqual } from '../util/hmac.js';

/** Finds apps by id (HTTP API) or key (WebSocket). */
export interface AppRegistry {
  byId(id: string): App | undefined;
  byKey(key: string): App | undefined;
  /** The app whose native API token this is (compared in constant time). */
  byApiToken(token: string): App | undefined;
  all(): readonly App[];
}

/** Apps from the configuration, indexed once. */
export class StaticAppRegistry implements AppRegistry {
  private readonly ids = new Map<string, App>();
  private readonly keys = new Map<string, App>();

  constructor(private readonly apps: readonly App[]) {
    for (const app of apps) {
      this.ids.set(app.id, app);
      this.keys.set(app.key, app);
    }
  }

  byId(id: string): App | undefined {
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
