import type { App } from '../core/app.js';
import { idempotencyKeyProblem, type IdempotencyStore } from '../core/idempotency.js';
import { ApiError, HttpError } from './errors.js';

/** The body field (Pusher REST, as Sockudo names it) and the header (native API) that carry a key. */
export const IDEMPOTENCY_FIELD = 'idempotency_key';
export const IDEMPOTENCY_HEADER = 'idempotency-key';

/** Checks a key given by a client; undefined stays undefined. `where` prefixes the error inside a batch. */
export function checkIdempotencyKey(key: unknown, where = ''): string | undefined {
  if (key === undefined) return undefined;
  const problem = idempotencyKeyProblem(key);
  if (problem) throw new ApiError(400, 'INVALID_IDEMPOTENCY_KEY', `${where}${IDEMPOTENCY_FIELD} ${problem}`);
  return key as string;
}

/**
 * Which publishes of one request go out: one without a key always (unless another key of the
 * request could not be recorded), one with a key only if the key was free. The keys are claimed
 * in request order on one connection, so a key named twice in a batch goes to its first item.
 * When the store cannot be reached for some key, the items whose keys were recorded are
 * delivered (a retry will find them), nothing else is, and the request is answered 503 so the
 * publisher retries with the same keys: a keyed publish is never delivered unrecorded.
 */
export async function claimAll(store: IdempotencyStore, app: App, keys: readonly (string | undefined)[]): Promise<{ deliver: boolean[]; failed: boolean }> {
  const outcomes = await Promise.allSettled(keys.map((k) => (k === undefined ? Promise.resolve(true) : store.claim(app.id, k))));
  const failed = outcomes.some((o) => o.status === 'rejected');
  const deliver = outcomes.map((o, i) => o.status === 'fulfilled' && o.value && (!failed || keys[i] !== undefined));
  return { deliver, failed };
}

export function idempotencyUnavailable(): HttpError {
  return new HttpError(503, 'Idempotency keys cannot be recorded (cluster engine unreachable); not delivered, retry with the same key', { 'retry-after': '1' }, 'IDEMPOTENCY_UNAVAILABLE');
}
