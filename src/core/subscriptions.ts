import type { App } from './app.js';
import { ChannelState, type AppState } from './app-state.js';
import type { CacheChannels } from './cache-channels.js';
import { channelKind } from './channels.js';
import type { Connection } from './connection.js';
import { fanOut } from './fan-out.js';
import type { HubContext } from './hub-context.js';
import type { ChannelMessage } from './message.js';
import type { Presence, PresenceMember } from './presence.js';

/** Subscription counts above this are announced at most once per `SUBSCRIPTION_COUNT_INTERVAL_MS`. */
const SUBSCRIPTION_COUNT_BURST_LIMIT = 100;
const SUBSCRIPTION_COUNT_INTERVAL_MS = 30_000;

export type SubscribeOutcome =
  | {
      readonly ok: true;
      /** Members including the joiner, for presence channels. */
      readonly members?: ReadonlyMap<string, unknown>;
      /** For cache channels: the last event, or null for a miss. */
      readonly cached?: ChannelMessage | null;
      /**
       * Interest routing: this node is not yet receiving the channel from the other nodes. Tell
       * the client it is subscribed once this settles (it never rejects).
       */
      readonly ready?: Promise<void>;
    }
  | { readonly ok: false; readonly error: 'presence_full' | 'forbidden' | 'channel_full' | 'too_many_channels' | 'closed' };

/**
 * Channels and their subscribers on this node: joining and leaving (with the limits that
 * refuse a join), channel_occupied / channel_vacated, and the subscription_count notices.
 */
export class Subscriptions {
  constructor(
    private readonly ctx: HubContext,
    private readonly presence: Presence,
    private readonly cache: CacheChannels,
  ) {}

  /**
   * Subscribes after the front-end has checked the client's credentials. Presence joins tell the
   * members (a user's first socket anywhere in the cluster only); the joiner gets the roster.
   */
  subscribe(conn: Connection, name: string, member?: PresenceMember): SubscribeOutcome {
    const s = this.ctx.apps.of(conn.app.id);
    // A connection that is not (or no longer) in the hub would never be removed from the channel.
    if (s.connections.get(conn.id) !== conn) return { ok: false, error: 'closed' };
    let ch = s.channels.get(name);
    const kind = ch?.kind ?? channelKind(name);
    if (kind.serverToUser !== undefined && conn.user?.id !== kind.serverToUser) return { ok: false, error: 'forbidden' };
    if (kind.isPresence && !member) return { ok: false, error: 'forbidden' };
    if (ch && conn.channels.has(name)) return this.subscribed(s, ch, conn.app.id);

    if (conn.channels.size >= conn.app.maxChannelsPerConnection) return { ok: false, error: 'too_many_channels' };
    if (conn.app.maxChannelSubscribers > 0 && ch && ch.subscribers.size >= conn.app.maxChannelSubscribers) return { ok: false, error: 'channel_full' };
    if (kind.isPresence && member && this.presence.isFull(s, name, member.userId, conn.app.maxPresenceMembers)) return { ok: false, error: 'presence_full' };
    if (!ch) {
      ch = new ChannelState(name, kind, s.traffic);
      s.channels.set(name, ch);
      this.watch(conn.app.id, ch);
    }
    ch.subscribers.add(conn);
    conn.channels.add(name);
    this.setCount(s, conn.app, ch);
    if (member) this.presence.join(s, ch, conn, member);
    return this.subscribed(s, ch, conn.app.id);
  }

  /** Interest routing: the node subscribes to the channel's shard if it is not yet receiving it. */
  private watch(appId: string, ch: ChannelState): void {
    const joining = this.ctx.bus.watch?.(appId, ch.name);
    if (!joining) return;
    ch.joining = joining.then(() => {
      ch.joining = undefined;
    });
  }

  private subscribed(s: AppState, ch: ChannelState, appId: string): SubscribeOutcome {
    const members = ch.kind.isPresence ? this.presence.roster(s, ch.name) : undefined;
    const ready = ch.joining ? { ready: ch.joining } : {};
    if (!ch.kind.isCache) return members ? { ok: true, members, ...ready } : { ok: true, ...ready };
    const cached = this.cache.forSubscriber(s, appId, ch.name);
    return members ? { ok: true, members, cached, ...ready } : { ok: true, cached, ...ready };
  }

  unsubscribe(conn: Connection, name: string): void {
    const s = this.ctx.apps.get(conn.app.id);
    const ch = s?.channels.get(name);
    if (!s || !ch || !ch.subscribers.delete(conn)) return;
    conn.channels.delete(name);
    this.presence.leave(s, ch, conn);
    if (ch.subscribers.size === 0) {
      clearTimeout(ch.countTimer);
      s.channels.delete(name);
      this.ctx.bus.unwatch?.(conn.app.id, name);
    }
    this.setCount(s, conn.app, ch);
  }

  /** Stops the pending subscription_count notices (on close). */
  stopTimers(): void {
    for (const app of this.ctx.apps.values()) {
      for (const ch of app.channels.values()) clearTimeout(ch.countTimer);
    }
  }

  private setCount(s: AppState, app: App, ch: ChannelState): void {
    const { bus, onEvent, self } = this.ctx;
    const [before, after] = s.subscriptions.set(self, ch.name, ch.subscribers.size);
    if (before === after) return;
    // User channels (#server-to-user-…) are plumbing of sign-in, not channels a backend asked for.
    if (!ch.kind.serverToUser) {
      if (before === 0) onEvent(app.id, { name: 'channel_occupied', channel: ch.name });
      else if (after === 0) onEvent(app.id, { name: 'channel_vacated', channel: ch.name });
    }
    bus.announce({ kind: 'subscriptions', appId: app.id, channel: ch.name, count: ch.subscribers.size });
    // After the current call returns, so a joiner hears subscription_succeeded before the count;
    // not queued at all when no count would be sent (the default), as each is a closure and a task.
    if (countsAnnounced(app, ch) && s.channels.has(ch.name)) queueMicrotask(() => this.announceCount(app, ch, s.subscriptions.total(ch.name)));
  }

  /** Records another node's subscriber count of a channel; this node's subscribers may hear the new total. */
  setRemoteCount(s: AppState, appId: string, node: string, channel: string, count: number): void {
    const [before, after] = s.subscriptions.set(node, channel, count);
    const ch = s.channels.get(channel);
    const app = this.ctx.appById(appId);
    if (ch && app && before !== after) this.announceCount(app, ch, after);
  }

  private announceCount(app: App, ch: ChannelState, count: number): void {
    if (!countsAnnounced(app, ch)) return;
    const send = (): void => {
      ch.countTimer = undefined;
      ch.lastCountSentAt = this.ctx.now();
      const total = this.ctx.apps.get(app.id)?.subscriptions.total(ch.name) ?? 0;
      fanOut(ch.subscribers, { kind: 'subscription_count', channel: ch.name, count: total }, ch.traffic);
    };
    // Busy channels would otherwise get a message per join: Pusher throttles them to one per 30 s.
    if (count <= SUBSCRIPTION_COUNT_BURST_LIMIT) return send();
    if (ch.countTimer) return;
    const wait = Math.max(0, ch.lastCountSentAt + SUBSCRIPTION_COUNT_INTERVAL_MS - this.ctx.now());
    ch.countTimer = setTimeout(send, wait);
    ch.countTimer.unref();
  }
}

/** Whether subscribers of the channel hear subscription_count notices. */
function countsAnnounced(app: App, ch: ChannelState): boolean {
  // A user's own channel is the server's way to reach them, not a room whose size matters.
  return app.enableSubscriptionCount && !ch.kind.isPresence && ch.kind.serverToUser === undefined;
}
