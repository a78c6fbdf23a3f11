import type { ResumeOutcome } from '../../core/channel-history.js';
import type { Connection } from '../../core/connection.js';
import type { Hub } from '../../core/hub.js';
import { parsePosition, positionField } from '../position.js';

/**
 * Pusher-protocol recovery, a Switchboard extension that pusher-js ignores (it keeps only
 * `event`, `channel`, `data` and `user_id` of a frame):
 * - on a history channel every event frame carries `"position":{"epoch","offset"}`, and
 *   `pusher_internal:subscription_succeeded` carries the channel's newest position;
 * - a `pusher:subscribe` whose data has `since` (the last position seen) gets `"recovered":true`
 *   on its subscription_succeeded, then what it missed in order, then live messages, with no gap
 *   and no duplicate; or `"recovered":false` and no replay, so the application reloads its state.
 * The replay and the hand-over to live delivery are the hub's (the native protocol's `since`).
 */
export function subscribeWithRecovery(hub: Hub, conn: Connection, channel: string, since: unknown, succeed: (recoveryFields: string) => void, error: (message: string) => void): void {
  const asked = since !== undefined && since !== null;
  const position = parsePosition(since);
  if (asked && position === undefined) error('pusher:subscribe data.since must be {"epoch": string, "offset": integer >= 0}; subscribed without a replay');
  let told = false;
  const tell = (outcome: ResumeOutcome): void => {
    told = true;
    succeed(recoveryFields(outcome, asked));
  };
  hub.resume(conn, channel, position, tell).catch(() => {
    // The store could not be read: subscribed and live, without a position or a replay.
    if (!told) succeed(asked ? ',"recovered":false' : '');
  });
}

/** The fields added to subscription_succeeded: where the channel is, and with `since`, whether the replay is complete. */
function recoveryFields(outcome: ResumeOutcome, asked: boolean): string {
  return positionField(outcome.position) + (asked ? `,"recovered":${outcome.recovered}` : '');
}
