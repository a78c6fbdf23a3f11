/**
 * The members of one presence channel. A member is a user, not a socket: a user on two tabs
 * is one member, added on the first join and removed on the last leave.
 */
export class PresenceRoster {
  private readonly members = new Map<string, { info: unknown; sockets: number }>();

  get size(): number {
    return this.members.size;
  }

  has(userId: string): boolean {
    return this.members.has(userId);
  }

  /** Returns true when this is the user's first socket in the channel. */
  join(userId: string, info: unknown): boolean {
    const member = this.members.get(userId);
    if (member) {
      member.sockets += 1;
      member.info = info; // the newest join describes the user
      return false;
    }
    this.members.set(userId, { info, sockets: 1 });
    return true;
  }

  /** Returns true when that was the user's last socket in the channel. */
  leave(userId: string): boolean {
    const member = this.members.get(userId);
    if (!member) return false;
    member.sockets -= 1;
    if (member.sockets > 0) return false;
    this.members.delete(userId);
    return true;
  }

  snapshot(): Map<string, unknown> {
    const out = new Map<string, unknown>();
    for (const [id, m] of this.members) out.set(id, m.info);
    return out;
  }

  userIds(): string[] {
    return [...this.members.keys()];
  }
}
