import { NO_CONNECTIONS, type AppState } from './app-state.js';
import type { ConnectionTarget } from './bus.js';
import type { Connection, SocketId } from './connection.js';
import type { HubContext } from './hub-context.js';

/** This node's connections per app, and the cluster-wide connection count each app's quota is checked against. */
export class ConnectionRegistry {
  private count = 0;

  constructor(private readonly ctx: HubContext) {}

  /** Registers a connection; false when the app is at its (cluster-wide) connection quota. */
  add(conn: Connection): boolean {
    const s = this.ctx.apps.of(conn.app.id);
    if (conn.app.maxConnections > 0 && s.connectionTally.total('') >= conn.app.maxConnections) return false;
    s.connections.set(conn.id, conn);
    this.count += 1;
    this.announce(s, conn.app.id);
    return true;
  }

  /** Unregisters a connection; the app's state when it was registered (the caller undoes the rest), undefined otherwise. */
  remove(conn: Connection): AppState | undefined {
    const s = this.ctx.apps.get(conn.app.id);
    if (!s || !s.connections.delete(conn.id)) return undefined;
    this.count -= 1;
    this.announce(s, conn.app.id);
    return s;
  }

  private announce(s: AppState, appId: string): void {
    s.connectionTally.set(this.ctx.self, '', s.connections.size);
    this.ctx.bus.announce({ kind: 'connections', appId, count: s.connections.size });
  }

  /** Connections on this node, over all apps. */
  get size(): number {
    return this.count;
  }

  get(appId: string, id: SocketId): Connection | undefined {
    return this.ctx.apps.get(appId)?.connections.get(id);
  }

  all(appId: string): IterableIterator<Connection> {
    return (this.ctx.apps.get(appId)?.connections ?? new Map<SocketId, Connection>()).values();
  }

  /** Connections of the app over the whole cluster. */
  clusterCount(appId: string): number {
    return this.ctx.apps.get(appId)?.connectionTally.total('') ?? 0;
  }

  /** This node's connections of a user (optionally one session of it), or one connection by id. */
  find(appId: string, target: ConnectionTarget): Connection[] {
    const s = this.ctx.apps.get(appId);
    if (!s) return [];
    if ('id' in target) {
      const conn = s.connections.get(target.id);
      return conn ? [conn] : [];
    }
    const all = [...(s.users.get(target.user) ?? NO_CONNECTIONS)];
    return target.session === undefined ? all : all.filter((c) => c.user?.session === target.session);
  }
}
