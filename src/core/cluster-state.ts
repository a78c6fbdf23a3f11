import type { CacheChannels } from './cache-channels.js';
import { channelKind } from './channels.js';
import type { HubContext } from './hub-context.js';
import { splitPresenceKey, type Presence } from './presence.js';
import type { StateDelta } from './state-delta.js';
import type { Subscriptions } from './subscriptions.js';
import type { Users } from './users.js';

/**
 * The other nodes' shares of the state (subscriptions, presence, signed-in users, connection
 * counts, cache entries): applied as they announce them, dropped when a node leaves, and this
 * node's own share handed out for snapshots.
 */
export class ClusterState {
  constructor(
    private readonly ctx: HubContext,
    private readonly subscriptions: Subscriptions,
    private readonly presence: Presence,
    private readonly users: Users,
    private readonly cache: CacheChannels,
  ) {}

  applyRemote(node: string, deltas: readonly StateDelta[], replace: boolean): void {
    if (node === this.ctx.self) return;
    if (replace) this.dropMissing(node, deltas);
    for (const d of deltas) {
      const s = this.ctx.apps.of(d.appId);
      switch (d.kind) {
        case 'subscriptions':
          this.subscriptions.setRemoteCount(s, d.appId, node, d.channel, d.count);
          break;
        case 'presence':
          this.presence.set(s, d.appId, node, d.channel, d.userId, d.count, d.info, undefined);
          break;
        case 'user':
          this.users.setOnline(s, d.appId, node, d.userId, d.count);
          break;
        case 'connections':
          s.connectionTally.set(node, '', d.count);
          break;
        case 'cache':
          this.cache.storeRemote(s, d.message, d.expiresAt);
          break;
      }
    }
  }

  dropNode(node: string, reportLeaves: boolean): void {
    if (node === this.ctx.self) return;
    this.dropMissing(node, [], reportLeaves);
  }

  /**
   * Before a snapshot is applied: whatever the node owned that the snapshot lacks is gone.
   * `reportLeaves`: raise channel_vacated / member_removed for what that empties cluster-wide.
   */
  private dropMissing(node: string, snapshot: readonly StateDelta[], reportLeaves = false): void {
    const { onEvent } = this.ctx;
    const keep = new Set(snapshot.map(deltaKey));
    for (const [appId, s] of this.ctx.apps.entries()) {
      for (const [channel] of [...s.subscriptions.entriesOf(node)]) {
        if (keep.has(stateKey('s', appId, channel))) continue;
        this.subscriptions.setRemoteCount(s, appId, node, channel, 0);
        if (reportLeaves && s.subscriptions.total(channel) === 0 && !channelKind(channel).serverToUser) {
          onEvent(appId, { name: 'channel_vacated', channel });
        }
      }
      for (const [key] of [...s.presence.entriesOf(node)]) {
        const [channel, userId] = splitPresenceKey(key);
        if (keep.has(stateKey('p', appId, channel, userId))) continue;
        this.presence.set(s, appId, node, channel, userId, 0, undefined, undefined);
        if (reportLeaves && !s.members.get(channel)?.has(userId)) onEvent(appId, { name: 'member_removed', channel, userId });
      }
      for (const [userId] of [...s.online.entriesOf(node)]) {
        if (!keep.has(stateKey('u', appId, userId))) this.users.setOnline(s, appId, node, userId, 0);
      }
      if (!keep.has(stateKey('c', appId))) s.connectionTally.set(node, '', 0);
    }
  }

  /** This node's whole share, for snapshots. */
  ownedState(): StateDelta[] {
    const { self } = this.ctx;
    const out: StateDelta[] = [];
    const now = this.ctx.now();
    for (const [appId, s] of this.ctx.apps.entries()) {
      out.push({ kind: 'connections', appId, count: s.connections.size });
      for (const [channel, count] of s.subscriptions.entriesOf(self)) out.push({ kind: 'subscriptions', appId, channel, count });
      for (const [key] of s.presence.entriesOf(self)) {
        const [channel, userId] = splitPresenceKey(key);
        out.push({ kind: 'presence', appId, channel, userId, count: 1, info: s.members.get(channel)?.get(userId) });
      }
      for (const [userId] of s.online.entriesOf(self)) out.push({ kind: 'user', appId, userId, count: 1 });
      for (const { message, expiresAt } of s.cache.values()) if (expiresAt > now) out.push({ kind: 'cache', appId, message, expiresAt });
    }
    return out;
  }
}

/**
 * Identifies a piece of shared state, for matching a snapshot against what is held. NUL-joined:
 * native channel names and user ids may hold any printable character, but no channel name holds
 * NUL, so the parts cannot run into each other.
 */
function stateKey(...parts: string[]): string {
  return parts.join('\u0000');
}

function deltaKey(d: StateDelta): string {
  switch (d.kind) {
    case 'subscriptions':
      return stateKey('s', d.appId, d.channel);
    case 'presence':
      return stateKey('p', d.appId, d.channel, d.userId);
    case 'user':
      return stateKey('u', d.appId, d.userId);
    case 'connections':
      return stateKey('c', d.appId);
    case 'cache':
      return stateKey('k', d.appId, d.message.channel);
  }
}
