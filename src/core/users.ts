import { NO_CONNECTIONS, addToIndex, removeFromIndex, type AppState } from './app-state.js';
import type { Connection, SignedInUser } from './connection.js';
import { serverToUserChannel } from './channels.js';
import type { HubContext } from './hub-context.js';

/** Signed-in users: which connections each user has here, who is online over the cluster, and watchlists. */
export class Users {
  constructor(private readonly ctx: HubContext) {}

  /** Binds a connection to a user: sign-in on Pusher, authentication on the native protocol. */
  signIn(conn: Connection, user: SignedInUser): void {
    const s = this.ctx.apps.of(conn.app.id);
    if (s.connections.get(conn.id) !== conn) return; // closed meanwhile: nothing would undo it
    conn.user = user;
    const sockets = s.users.get(user.id);
    if (sockets) sockets.add(conn);
    else {
      s.users.set(user.id, new Set([conn]));
      this.setOnline(s, conn.app.id, this.ctx.self, user.id, 1);
      // Interest routing: messages to the user reach the nodes that hold the shard of its channel.
      // (A Pusher client then subscribes to that channel, which waits for the shard to be live.)
      void this.ctx.bus.watch?.(conn.app.id, serverToUserChannel(user.id));
    }
    if (user.watchlist.length === 0) return;
    const online: string[] = [];
    const offline: string[] = [];
    for (const watched of user.watchlist) {
      addToIndex(s.watchers, watched, conn);
      (s.online.total(watched) > 0 ? online : offline).push(watched);
    }
    conn.notify({ kind: 'watchlist', online, offline });
  }

  /** A closed connection leaves its user (and the watchlists it held). */
  signOut(s: AppState, conn: Connection): void {
    const user = conn.user;
    if (!user) return;
    for (const watched of user.watchlist) removeFromIndex(s.watchers, watched, conn);
    if (!removeFromIndex(s.users, user.id, conn)) return;
    this.setOnline(s, conn.app.id, this.ctx.self, user.id, 0);
    this.ctx.bus.unwatch?.(conn.app.id, serverToUserChannel(user.id));
  }

  /** Records whether `node` has the user signed in; watchers hear when that flips cluster-wide. */
  setOnline(s: AppState, appId: string, node: string, userId: string, count: number): void {
    const [before, after] = s.online.set(node, userId, count > 0 ? 1 : 0);
    if (node === this.ctx.self) this.ctx.bus.announce({ kind: 'user', appId, userId, count });
    if ((before === 0) === (after === 0)) return;
    const watchers = s.watchers.get(userId);
    if (!watchers) return;
    const ids = [userId];
    const notice = after > 0 ? { kind: 'watchlist' as const, online: ids, offline: [] } : { kind: 'watchlist' as const, online: [], offline: ids };
    for (const conn of watchers) conn.notify(notice);
  }

  /** This node's signed-in connections of a user. */
  connectionsOf(appId: string, userId: string): ReadonlySet<Connection> {
    return this.ctx.apps.get(appId)?.users.get(userId) ?? NO_CONNECTIONS;
  }
}
