import type { App } from '../core/app.js';

/** Finds apps by id (HTTP API) or key (WebSocket). */
export interface AppRegistry {
  byId(id: string): App | undefined;
  byKey(key: string): App | undefined;
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

  all(): readonly App[] {
    return this.apps;
  }
}
