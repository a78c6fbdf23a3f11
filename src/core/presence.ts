import type { AppState, ChannelState } from './app-state.js';
import type { Connection, SocketId } from './connection.js';
import { fanOut } from './fan-out.js';
import type { HubContext } from './hub-context.js';

/** Separates channel and user id in presence keys. Channel names cannot contain it; user ids may. */
const SEP = '\u0000';

export interface PresenceMember {
  readonly userId: string;
  readonly info: unknown;
}

export function presenceKey(channel: string, userId: string): string {
  return channel + SEP + userId;
}

export function splitPresenceKey(key: string): [channel: string, userId: string] {
  const at = key.indexOf(SEP); // the first one: what follows is the user id, whatever it holds
  return [key.slice(0, at), key.slice(at + 1)];
}

/**
 * Presence channels: who is in them over the cluster, the member_added / member_removed
 * notices (on the cluster-wide first join and last leave of a user), and the rosters.
 */
export class Presence {
  constructor(private readonly ctx: HubContext) {}

  /** Whether a new member would overflow the channel's roster. */
  isFull(s: AppState, channel: string, userId: string, maxMembers: number): boolean {
    const present = s.members.get(channel);
    return present !== undefined && !present.has(userId) && present.size >= maxMembers;
  }

  /** A subscribed socket joins as `member`; the user's first socket on this node tells the cluster. */
  join(s: AppState, ch: ChannelState, conn: Connection, member: PresenceMember): void {
    if (!ch.memberOf || !ch.localSockets) return;
    ch.memberOf.set(conn, member.userId);
    const sockets = (ch.localSockets.get(member.userId) ?? 0) + 1;
    ch.localSockets.set(member.userId, sockets);
    if (sockets === 1) this.set(s, conn.app.id, this.ctx.self, ch.name, member.userId, 1, member.info, conn.id);
    else s.members.get(ch.name)?.set(member.userId, member.info); // the newest join describes the user
  }

  /** An unsubscribing socket leaves; the user's last socket on this node tells the cluster. */
  leave(s: AppState, ch: ChannelState, conn: Connection): void {
    if (!ch.memberOf || !ch.localSockets) return;
    const userId = ch.memberOf.get(conn);
    ch.memberOf.delete(conn);
    if (userId === undefined) return;
    const sockets = (ch.localSockets.get(userId) ?? 1) - 1;
    if (sockets > 0) ch.localSockets.set(userId, sockets);
    else {
      ch.localSockets.delete(userId);
      this.set(s, conn.app.id, this.ctx.self, ch.name, userId, 0, undefined, undefined);
    }
  }

  /** Members of the channel (the joiner included), for subscription_succeeded. */
  roster(s: AppState, channel: string): Map<string, unknown> {
    return new Map(s.members.get(channel));
  }

  /**
   * Records whether `node` has the user in a presence channel. The cluster-wide first join and
   * last leave are what members hear about; each node tells its own subscribers.
   */
  set(s: AppState, appId: string, node: string, channel: string, userId: string, count: number, info: unknown, except: SocketId | undefined): void {
    const { bus, onEvent, self } = this.ctx;
    const [before, after] = s.presence.set(node, presenceKey(channel, userId), count > 0 ? 1 : 0);
    if (node === self) {
      bus.announce({ kind: 'presence', appId, channel, userId, count, ...(count > 0 ? { info } : {}) });
      if (before === 0 && after > 0) onEvent(appId, { name: 'member_added', channel, userId });
      else if (before > 0 && after === 0) onEvent(appId, { name: 'member_removed', channel, userId });
    }
    if (after > 0) {
      let members = s.members.get(channel);
      if (!members) s.members.set(channel, (members = new Map<string, unknown>()));
      members.set(userId, info);
    }
    const ch = s.channels.get(channel);
    if (before === 0 && after > 0) {
      if (ch) fanOut(ch.subscribers, { kind: 'member_added', channel, userId, userInfo: info, ...(except ? { exceptSocketId: except } : {}) }, ch.traffic);
    } else if (before > 0 && after === 0) {
      const members = s.members.get(channel);
      members?.delete(userId);
      if (members?.size === 0) s.members.delete(channel);
      if (ch) fanOut(ch.subscribers, { kind: 'member_removed', channel, userId }, ch.traffic);
    }
  }

  /** The user a connection joined a presence channel as. */
  memberUserId(conn: Connection, name: string): string | undefined {
    return this.ctx.apps.get(conn.app.id)?.channels.get(name)?.memberOf?.get(conn);
  }

  /** Whether the user is in the presence channel anywhere in the cluster. */
  isMember(appId: string, channel: string, userId: string): boolean {
    return this.ctx.apps.get(appId)?.members.get(channel)?.has(userId) ?? false;
  }

  userIds(appId: string, channel: string): string[] {
    return [...(this.ctx.apps.get(appId)?.members.get(channel)?.keys() ?? [])];
  }
}
