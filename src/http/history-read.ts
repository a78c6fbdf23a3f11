import type { App } from '../core/app.js';
import { reachesBack, type HistoryMessage } from '../core/history.js';
import type { HubReadView } from '../core/hub-view.js';
import { ApiError } from './errors.js';

/** Most messages one history read returns (a rule keeps at most 1000). */
export const MAX_HISTORY_LIMIT = 1000;
const DEFAULT_HISTORY_LIMIT = 100;

/** The query of a history read, as both APIs take it: `since` (offset), `epoch`, `limit`. */
export interface HistoryQuery {
  readonly since?: string | null | undefined;
  readonly epoch?: string | null | undefined;
  readonly limit?: string | null | undefined;
}

/**
 * A page of a channel's history for the REST APIs. Without `since`: the newest `limit` kept
 * messages. With `since`: the first `limit` after that offset, and `more` when later ones are
 * kept (ask again with `since` = the last offset). With `epoch` too: `recovered` says whether
 * the history reaches back to that position without a gap; when it does not (another epoch,
 * or messages after it were dropped) no messages are returned, never a page with a hole in it.
 */
export async function readChannelHistory(hub: HubReadView, app: App, channel: string, query: HistoryQuery): Promise<Record<string, unknown>> {
  const since = optionalInteger('since', query.since, 0);
  const limit = optionalInteger('limit', query.limit, 1) ?? DEFAULT_HISTORY_LIMIT;
  if (limit > MAX_HISTORY_LIMIT) throw new ApiError(400, 'INVALID_PARAMETER', `limit must be at most ${MAX_HISTORY_LIMIT}`);
  const epoch = query.epoch ?? undefined;
  if (epoch !== undefined && (epoch === '' || since === undefined)) throw new ApiError(400, 'INVALID_PARAMETER', 'epoch needs since (the offset seen in that epoch)');
  const read = hub.readHistory(app, channel, since, limit, since === undefined);
  if (read === null) throw new ApiError(404, 'NO_HISTORY', `channel ${channel} keeps no history (no history rule of the app matches it)`);
  const page = await read;
  const recovered = epoch === undefined || since === undefined ? undefined : reachesBack(page, { epoch, offset: since });
  const messages = recovered === false ? [] : page.messages;
  const last = messages.at(-1);
  return {
    channel,
    epoch: page.epoch,
    top: page.top,
    oldest: page.oldest,
    ...(recovered === undefined ? {} : { recovered }),
    more: last !== undefined && last.offset < page.top,
    messages: messages.map(wireMessage),
  };
}

function wireMessage(m: HistoryMessage): Record<string, unknown> {
  return {
    offset: m.offset,
    event: m.event,
    data: m.data,
    ...(m.binary ? { binary: true } : {}),
    ...(m.userId === undefined ? {} : { user_id: m.userId }),
    at: m.at,
  };
}

function optionalInteger(name: string, value: string | null | undefined, min: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (!/^\d{1,15}$/.test(value) || Number(value) < min) throw new ApiError(400, 'INVALID_PARAMETER', `${name} must be an integer ≥ ${min}`);
  return Number(value);
}
