import type { App } from '../core/app.js';
import type { DeadLetter } from '../webhooks/queue.js';
import { ApiError } from './errors.js';

/** What the API needs of the webhook dispatcher. */
export interface DeadLetterAccess {
  readonly keepsDeadLetters: boolean;
  /** Whether the shared webhook queue is reachable; undefined without one. */
  readonly queueHealthy: boolean | undefined;
  deadLetters(appId: string, limit: number): Promise<DeadLetter[]>;
  replay(appId: string, ids: readonly string[] | undefined): Promise<number>;
}


const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1_000;

function requireDurable(webhooks: DeadLetterAccess): void {
  if (!webhooks.keepsDeadLetters) throw new ApiError(409, 'NO_DURABLE_QUEUE', 'Dead letters are kept with webhookQueue redis or nats only');
}

/** GET /webhooks/dead-letters?limit=: the app's dead letters, oldest first. */
export async function listDeadLetters(app: App, limitParam: string | undefined, webhooks: DeadLetterAccess): Promise<Record<string, unknown>> {
  requireDurable(webhooks);
  let limit = DEFAULT_LIMIT;
  if (limitParam !== undefined) {
    if (!/^\d+$/.test(limitParam) || Number(limitParam) < 1 || Number(limitParam) > MAX_LIMIT) {
      throw new ApiError(400, 'INVALID_PARAMETER', `limit must be an integer from 1 to ${MAX_LIMIT}`);
    }
    limit = Number(limitParam);
  }
  return { deadLetters: await webhooks.deadLetters(app.id, limit) };
}

/** POST /webhooks/dead-letters/replay {ids?}: queues them (all without ids) for delivery again. */
export async function replayDeadLetters(app: App, ids: unknown, webhooks: DeadLetterAccess): Promise<Record<string, unknown>> {
  requireDurable(webhooks);
  if (ids !== undefined && !(Array.isArray(ids) && ids.every((id) => typeof id === 'string' && id.length > 0))) {
    throw new ApiError(400, 'INVALID_PARAMETER', 'ids must be an array of dead-letter ids');
  }
  return { replayed: await webhooks.replay(app.id, ids as string[] | undefined) };
}
