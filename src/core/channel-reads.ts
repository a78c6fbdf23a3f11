import type { CacheChannels } from './cache-channels.js';
import { channelKind } from './channels.js';
import type { HubContext } from './hub-context.js';
import type { ChannelMessage } from './message.js';

export interface ChannelInfo {
  readonly occupied: boolean;
  readonly subscriptionCount: number;
  readonly userCount: number | undefined;
  readonly cache: { readonly message: ChannelMessage; readonly ttlSeconds: number } | undefined;
}

/** What the REST APIs read about channels: cluster-wide, from this node's copy, never by asking the other nodes. */
export class ChannelReads {
  constructor(
    private readonly ctx: HubContext,
    private readonly cache: CacheChannels,
  ) {}

  channelInfo(appId: string, name: string): ChannelInfo {
    const s = this.ctx.apps.get(appId);
    const count = s?.subscriptions.total(name) ?? 0;
    const cached = s ? this.cache.entry(s, name) : undefined;
    return {
      occupied: count > 0,
      subscriptionCount: count,
      userCount: channelKind(name).isPresence ? (s?.members.get(name)?.size ?? 0) : undefined,
      cache: cached && { message: cached.message, ttlSeconds: this.cache.ttlSeconds(cached) },
    };
  }

  /** Occupied channels whose name starts with `prefix`. */
  channels(appId: string, prefix = ''): Map<string, ChannelInfo> {
    const out = new Map<string, ChannelInfo>();
    const s = this.ctx.apps.get(appId);
    if (!s) return out;
    for (const name of s.subscriptions.keys()) {
      if (!name.startsWith(prefix) || name.startsWith('#')) continue;
      out.set(name, {
        occupied: true,
        subscriptionCount: s.subscriptions.total(name),
        userCount: s.members.get(name)?.size ?? (channelKind(name).isPresence ? 0 : undefined),
        cache: undefined,
      });
    }
    return out;
  }
}
