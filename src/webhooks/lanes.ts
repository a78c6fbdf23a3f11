import type { WebhookTarget } from '../core/app.js';
import type { HubEvent } from '../core/hub-events.js';

/**
 * Without batching, how many requests one target may have under way. A channel's events always
 * take the same lane, so they arrive in order; other channels need not wait behind them.
 */
export const UNBATCHED_LANES = 8;

export function laneCount(target: WebhookTarget): number {
  return target.batch ? 1 : UNBATCHED_LANES;
}

/** Spreads channels over the lanes (FNV-1a): stable, so one channel keeps one lane (on every node). */
export function laneOf(channel: string, lanes: number): number {
  if (lanes === 1) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < channel.length; i++) h = Math.imul(h ^ channel.charCodeAt(i), 0x01000193);
  return (h >>> 0) % lanes;
}

/** Whether a target wants an event (its `events` list, `channelPrefix` and `channelSuffix`). */
export function targetAccepts(target: WebhookTarget, event: HubEvent): boolean {
  if (target.events && !target.events.includes(event.name)) return false;
  const { channelPrefix, channelSuffix } = target;
  return (channelPrefix === undefined || event.channel.startsWith(channelPrefix)) && (channelSuffix === undefined || event.channel.endsWith(channelSuffix));
}
