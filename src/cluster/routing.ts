import { channelKind, directTarget } from '../core/channels.js';

/**
 * With interest routing, what still goes to every node: messages to a socket or to all
 * connections (a socket's node is not known), and cache channels (every node keeps their last
 * event for its next subscriber). Messages to a user go to the shard of the user's channel,
 * which a node holds while the user is signed in there.
 */
export function everyNodeGets(channel: string): boolean {
  if (channel.charCodeAt(0) === 35 /* # */) return !('user' in (directTarget(channel) ?? {}));
  return channelKind(channel).isCache;
}

/** FNV-1a over app and channel: cheap, stable across nodes and versions. */
export function channelHash(appId: string, channel: string): number {
  let h = 0x811c9dc5;
  const s = appId + '\u0000' + channel;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
