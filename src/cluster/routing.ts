import { channelKind } from '../core/channels.js';

/**
 * With interest routing, what still goes to every node: messages to a user, a socket or all
 * connections (where the user is is not known), and cache channels (every node keeps their last
 * event for its next subscriber).
 */
export function everyNodeGets(channel: string): boolean {
  return channel.charCodeAt(0) === 35 /* # */ || channelKind(channel).isCache;
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
