import type { App } from '../core/app.js';
import { HttpError } from '../http/errors.js';
import type { Logger } from '../log.js';
import type { LookupField, StoredApp } from './columns.js';
import type { AppLookup, AppRegistry } from './registry.js';
import type { AppStore } from './store.js';

/** The store cannot be asked and the app is not cached: retry shortly (REST 503, WebSocket 4100). */
export class AppsUnavailableError extends HttpError {
  constructor() {
    super(503, 'The app store is unavailable: try again shortly', { 'Retry-After': '1' }, 'APP_STORE_UNAVAILABLE');
    this.name = 'AppsUnavailableError';
  }
}

/**
 * The app's row fails validation (its reason is logged): not an unknown app, and not worth a
 * retry until someone fixes the row (REST 500 APP_MISCONFIGURED, WebSocket 4011).
 */
export class AppMisconfiguredError extends HttpError {
  constructor() {
    super(500, 'The app is misconfigured in the app store (see the server log)', {}, 'APP_MISCONFIGURED');
    this.name = 'AppMisconfiguredError';
  }
}

export interface ResolverOptions {
  readonly ttlMs: number;
  readonly negativeCacheSize: number;
  readonly now?: () => number;
}

export interface ResolverEvents {
  /** A cached app changed in the store (limits, secret, enabled…): open connections follow it. */
  readonly onChange: (app: App) => void;
  /** A cached app was deleted or its row became invalid. */
  readonly onRemoved: (id: string) => void;
  /** An app read for the first time (or again after it was dropped from the cache). */
  readonly onFound?: (app: App) => void;
  /** Apps with connections on this node stay cached (and re-read) however long they go unasked. */
  readonly inUse: (id: string) => boolean;
}

interface Entry {
  app: App;
  expiresAt: number;
  usedAt: number;
}

/** Cached apps not asked for in this many TTLs (and with no connections here) are dropped. */
const IDLE_TTLS = 6;
/** Apps re-read at once by the background refresh. */
const REFRESH_CONCURRENCY = 4;
/**
 * Distinct look-ups waiting on the store at once; beyond it a miss is refused as retryable
 * rather than queued behind the database's pool (a storm of distinct keys stays bounded).
 */
const MAX_IN_FLIGHT = 256;

/**
 * Apps from a database, cached so that a connection storm does not become a query storm: by id,
 * key and API token for `ttlMs`, unknown values in a bounded negative cache, one query in flight
 * per value. Apps in use are re-read every TTL, so a change made in the database directly takes
 * effect within it. While the store is down, cached apps keep working, one query at a time
 * probes it, and everything else is refused at once as retryable.
 */
export class AppResolver implements AppRegistry {
  private readonly apps = new Map<string, Entry>();
  /** `key:…` / `apiToken:…` → app id. */
  private readonly index = new Map<string, string>();
  /**
   * `field:value` → until when it is known not to exist (or to be a refused row). Oldest first,
   * so the bound drops the oldest.
   */
  private readonly missing = new Map<string, { readonly until: number; readonly refused: boolean }>();
  private readonly inflight = new Map<string, Promise<App | undefined>>();
  /** Rows refused, with the reason last logged, so a bad row is logged once per change, not per lookup. */
  private readonly refused = new Map<string, string>();
  private available = true;
  private probing = false;
  private refreshing = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** Queries sent to the store (Prometheus; the benchmark reads it). */
  storeQueries = 0;

  constructor(
    private readonly store: AppStore,
    private readonly options: ResolverOptions,
    private readonly log: Logger,
    private events: ResolverEvents = { onChange: () => undefined, onRemoved: () => undefined, inUse: () => false },
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Starts the background refresh of cached apps. */
  start(events: ResolverEvents): void {
    this.events = events;
    this.timer = setInterval(() => {
      this.refreshAll().catch((err: unknown) => this.log.error({ err }, 'app refresh failed'));
    }, this.options.ttlMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  readonly fromDatabase = true;

  get isAvailable(): boolean {
    return this.available;
  }

  byId(id: string): AppLookup {
    return this.lookup('id', id);
  }

  byKey(key: string): AppLookup {
    return this.lookup('key', key);
  }

  byApiToken(token: string): AppLookup {
    return this.lookup('apiToken', token);
  }

  cachedById(id: string): App | undefined {
    return this.apps.get(id)?.app;
  }

  all(): readonly App[] {
    return [...this.apps.values()].map((e) => e.app);
  }

  /** Forgets what is cached of `id` and re-reads it now (a change made through this cluster). */
  async invalidate(id: string): Promise<void> {
    this.missing.clear(); // a new app's key may be remembered as unknown
    if (!this.apps.has(id)) return;
    await this.refresh(id);
  }

  private lookup(field: LookupField, value: string): AppLookup {
    const now = this.now();
    const entry = this.cached(field, value);
    if (entry) {
      entry.usedAt = now;
      if (entry.expiresAt > now || !this.available) return entry.app; // stale is better than nothing while the store is down
    } else {
      const miss = this.missing.get(`${field}:${value}`);
      if (miss !== undefined && miss.until > now) return miss.refused ? Promise.reject(new AppMisconfiguredError()) : undefined;
    }
    return this.fetch(field, value, entry?.app);
  }

  private cached(field: LookupField, value: string): Entry | undefined {
    const id = field === 'id' ? value : this.index.get(`${field}:${value}`);
    const entry = id === undefined ? undefined : this.apps.get(id);
    return entry && entry.app[field] === value ? entry : undefined;
  }

  private fetch(field: LookupField, value: string, stale: App | undefined): Promise<App | undefined> {
    const k = `${field}:${value}`;
    const pending = this.inflight.get(k);
    if (pending) return pending;
    if (this.inflight.size >= MAX_IN_FLIGHT) return stale ? Promise.resolve(stale) : Promise.reject(new AppsUnavailableError());
    let probe = false;
    if (!this.available) {
      // One probe at a time: a storm of unknown keys must not pile up on a dead database.
      if (this.probing) return Promise.reject(new AppsUnavailableError());
      this.probing = probe = true;
    }
    const query = this.ask(field, value)
      .then((stored) => this.accept(field, value, stored))
      .catch((err: unknown) => {
        if (err instanceof AppsUnavailableError && stale) return stale;
        throw err;
      })
      .finally(() => {
        this.inflight.delete(k);
        if (probe) this.probing = false;
      });
    this.inflight.set(k, query);
    return query;
  }

  /** One query; a failure marks the store down (logged once) and becomes AppsUnavailableError. */
  private async ask(field: LookupField, value: string): Promise<StoredApp | undefined> {
    this.storeQueries++;
    try {
      const stored = await this.store.find(field, value);
      if (!this.available) {
        this.available = true;
        this.log.info({ store: this.store.kind }, 'app store reachable again');
      }
      return stored;
    } catch (err) {
      if (this.available) {
        this.available = false;
        this.log.error({ store: this.store.kind, err: (err as Error).message }, 'app store unreachable: cached apps keep working, unknown ones are refused as retryable until it is back');
      }
      throw new AppsUnavailableError();
    }
  }

  private accept(field: LookupField, value: string, stored: StoredApp | undefined): App | undefined {
    if (stored?.ok) return this.put(stored.app);
    if (stored) this.refuse(stored.id, stored.reason);
    this.rememberMissing(`${field}:${value}`, stored !== undefined);
    const entry = this.cached(field, value);
    if (entry) this.remove(entry.app.id);
    if (stored) throw new AppMisconfiguredError();
    return undefined;
  }

  private put(config: App): App {
    const now = this.now();
    const previous = this.apps.get(config.id);
    this.refused.delete(config.id);
    if (previous && JSON.stringify(previous.app) === JSON.stringify(config)) {
      previous.expiresAt = now + this.options.ttlMs;
      return previous.app;
    }
    const app = Object.freeze(config);
    if (previous) this.unindex(previous.app);
    this.apps.set(app.id, { app, expiresAt: now + this.options.ttlMs, usedAt: previous?.usedAt ?? now });
    this.index.set(`key:${app.key}`, app.id);
    if (app.apiToken !== undefined) this.index.set(`apiToken:${app.apiToken}`, app.id);
    this.missing.delete(`key:${app.key}`);
    this.missing.delete(`id:${app.id}`);
    if (previous) this.events.onChange(app);
    else this.events.onFound?.(app);
    return app;
  }

  private remove(id: string): void {
    const entry = this.apps.get(id);
    if (!entry) return;
    this.apps.delete(id);
    this.unindex(entry.app);
    this.events.onRemoved(id);
  }

  private unindex(app: App): void {
    this.index.delete(`key:${app.key}`);
    if (app.apiToken !== undefined) this.index.delete(`apiToken:${app.apiToken}`);
  }

  private refuse(id: string, reason: string): void {
    if (this.refused.get(id) !== reason) this.log.error({ app: id, reason }, 'app row refused: it fails validation, so this app is not served');
    // Bounded as the negative cache is: a table of bad rows must not grow this without end.
    if (this.refused.size >= this.options.negativeCacheSize) this.refused.delete(this.refused.keys().next().value as string);
    this.refused.set(id, reason);
    this.remove(id);
  }

  private rememberMissing(k: string, refused: boolean): void {
    this.missing.delete(k);
    if (this.missing.size >= this.options.negativeCacheSize) this.missing.delete(this.missing.keys().next().value as string);
    this.missing.set(k, { until: this.now() + this.options.ttlMs, refused });
  }

  /** Re-reads one cached app by id. */
  private async refresh(id: string): Promise<void> {
    let stored: StoredApp | undefined;
    try {
      stored = await this.ask('id', id);
    } catch {
      return; // kept as it is; the outage is logged once by ask()
    }
    if (stored?.ok) this.put(stored.app);
    else if (stored) this.refuse(stored.id, stored.reason);
    else this.remove(id);
  }

  private async refreshAll(): Promise<void> {
    // A slow store can make a round outlast the interval: rounds never overlap.
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      await this.refreshRound();
    } finally {
      this.refreshing = false;
    }
  }

  private async refreshRound(): Promise<void> {
    const now = this.now();
    const ids: string[] = [];
    for (const [id, entry] of this.apps) {
      if (entry.usedAt < now - IDLE_TTLS * this.options.ttlMs && !this.events.inUse(id)) {
        this.apps.delete(id);
        this.unindex(entry.app);
      } else ids.push(id);
    }
    // While the store is down, one app probes it; the rest wait for it to be back.
    const round = this.available ? ids : ids.slice(0, 1);
    for (let i = 0; i < round.length; i += REFRESH_CONCURRENCY) {
      await Promise.all(round.slice(i, i + REFRESH_CONCURRENCY).map((id) => this.refresh(id)));
    }
  }
}
