import type { StoredApp } from '../apps/columns.js';
import type { App } from '../core/app.js';
import type { Logger } from '../log.js';

/** What the follower reads: the app store's list and look-up by id. */
export interface AppSource {
  list(): Promise<StoredApp[]>;
  find(by: 'id', id: string): Promise<StoredApp | undefined>;
}

/** What the follower drives: the webhook dispatcher's durable targets. */
export interface FollowedTargets {
  follow(appId: string, app: App | undefined): void;
  followed(): IterableIterator<string>;
}

/**
 * With a durable webhook queue and a database app store, every node must consume every app's
 * queue, not only those of apps it has seen an event of: the node that queued the events may be
 * dead. So the store is listed at start and every `periodMs` (apps added or changed in the
 * database directly), and one app is read again at once when the cluster says it changed (the
 * admin API, the CLI). Apps gone, disabled or without webhooks have their targets stopped.
 */
export class StoreFollower {
  private timer: NodeJS.Timeout | undefined;
  private listing: Promise<void> | undefined;
  /** The last listing failed: logged once until one succeeds. */
  private failing = false;

  constructor(
    private readonly source: AppSource,
    private readonly targets: FollowedTargets,
    private readonly periodMs: number,
    private readonly log: Logger,
  ) {}

  /** Lists the store now (a store that cannot be reached is logged and tried again each period), then every period. */
  start(): void {
    void this.sync();
    this.timer = setInterval(() => void this.sync(), this.periodMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The app changed (a cluster command): read it now. */
  changed(id: string): void {
    this.source.find('id', id).then(
      (stored) => this.targets.follow(id, stored?.ok ? stored.app : undefined),
      (err: unknown) => this.log.warn({ app: id, err: (err as Error).message }, 'could not re-read a changed app for its webhooks; the next listing will'),
    );
  }

  /** One listing at a time: a slow store must not pile them up. */
  private sync(): Promise<void> {
    this.listing ??= this.listOnce().finally(() => (this.listing = undefined));
    return this.listing;
  }

  private async listOnce(): Promise<void> {
    let rows: StoredApp[];
    try {
      rows = await this.source.list();
    } catch (err) {
      if (!this.failing) this.log.warn({ err: (err as Error).message }, 'cannot list the app store: webhook queues of apps not seen yet wait for the next listing');
      this.failing = true;
      return;
    }
    this.failing = false;
    const listed = new Set<string>();
    for (const row of rows) {
      if (!row.ok) continue; // a bad row is logged by the resolver when it is asked for
      listed.add(row.app.id);
      this.targets.follow(row.app.id, row.app);
    }
    for (const id of [...this.targets.followed()]) if (!listed.has(id)) this.targets.follow(id, undefined);
  }
}
