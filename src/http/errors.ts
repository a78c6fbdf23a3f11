/**
 * HTTP API refusals: one error type, one table of the native API's codes, one mapper from a
 * thrown error to a reply, which each API writes in its own shape (the Pusher REST API's
 * `{"error"}`, the native API's `{"success":false,"error","errorCode"}`). The README's native
 * API code table is checked against ApiErrorCode by test/unit/code-tables.test.ts.
 */

/** Every `errorCode` of the native HTTP API, each with its HTTP status(es) and meaning. */
export const ApiErrorCode = {
  INVALID_AUTHORIZATION: { status: [401], description: 'no credential, unknown token, unknown `auth_key`, bad signature' },
  APP_DISABLED: { status: [403], description: 'the app has `enabled: false`' },
  INVALID_BODY: { status: [400, 415], description: 'body is not a JSON object or a form (415: another content type)' },
  INVALID_PARAMETER: { status: [400], description: 'a parameter of the wrong type' },
  INVALID_MESSAGE: { status: [400], description: 'data nested too deeply to serialise' },
  BODY_TOO_LARGE: { status: [413], description: 'body larger than `maxRequestBodyBytes`' },
  BAD_REQUEST: { status: [], description: 'fallback for any other HTTP-level refusal (4xx)' },
  MISSING_CHANNEL: { status: [400], description: '`/broadcast` without `channel`/`channels`' },
  TOO_MANY_CHANNELS: { status: [400], description: 'more than `maxEventChannels` channels' },
  INVALID_CHANNEL: { status: [400], description: 'an invalid channel name' },
  MISSING_MESSAGE: { status: [400], description: '`/broadcast` without `data`/`message`' },
  MESSAGE_TOO_LARGE: { status: [413], description: 'data larger than `maxEventDataBytes`' },
  INVALID_EVENT: { status: [400], description: '`event` too long or reserved' },
  MISSING_CONNECTION_OR_USER: { status: [400], description: 'no `id` or `user`' },
  INVALID_MESSAGE_TYPE: { status: [400], description: '`/send` without `type=text` or `type=binary`' },
  USER_ID_REQUIRED: { status: [400], description: '`/claim` without `user`' },
  INVALID_EXPIRATION: { status: [400], description: '`expiration` not an integer' },
  NEGATIVE_EXPIRATION: { status: [400], description: '`expiration` negative' },
  INVALID_DURATION: { status: [400], description: '`duration` not an integer' },
  NEGATIVE_DURATION: { status: [400], description: '`duration` negative' },
  CLAIM_ID_ALREADY_USED: { status: [400], description: '`/claim` with an `id` that holds an unexpired claim' },
  NO_DURABLE_QUEUE: { status: [409], description: 'dead letters asked for with `webhookQueue: memory`' },
  NO_HISTORY: { status: [404], description: 'a history read of a channel that no `history` rule of the app matches' },
  INVALID_IDEMPOTENCY_KEY: { status: [400], description: 'an idempotency key that is empty, longer than 256 characters or not printable ASCII' },
  IDEMPOTENCY_UNAVAILABLE: { status: [503], description: 'a publish with an idempotency key while the engine that records keys cannot be reached: not delivered, retry with the same key (`Retry-After`)' },
  RATE_LIMITED: { status: [429], description: 'an API request rate limit reached' },
  APP_STORE_UNAVAILABLE: { status: [503], description: 'the app database cannot be reached and the app is not cached: retry (`Retry-After`)' },
  INTERNAL_ERROR: { status: [500], description: 'the server failed (a store down, a bug); logged' },
} as const;
export type ApiErrorCode = keyof typeof ApiErrorCode;

/** An HTTP API refusal. `errorCode` is for the native API's shape; without one, the status picks it. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly errorCode?: ApiErrorCode,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A refusal with its native API code. */
export class ApiError extends HttpError {
  constructor(status: number, errorCode: ApiErrorCode, message: string) {
    super(status, message, {}, errorCode);
  }
}

export interface ErrorReply {
  readonly status: number;
  readonly message: string;
  readonly errorCode: ApiErrorCode;
  readonly headers: Record<string, string>;
}

/** What a thrown error answers; undefined for an unexpected one (a 500, logged by the caller). */
export function errorReply(err: unknown): ErrorReply | undefined {
  if (!(err instanceof HttpError)) return undefined;
  const errorCode = err.errorCode ?? (err.status === 413 ? 'BODY_TOO_LARGE' : err.status === 429 ? 'RATE_LIMITED' : 'BAD_REQUEST');
  return { status: err.status, message: err.message, errorCode, headers: err.headers };
}

export const INTERNAL_ERROR_MESSAGE = 'Internal error; see the server log';

/** The Pusher REST API's (and health endpoints') shape. */
export function pusherErrorBody(reply: ErrorReply): Record<string, unknown> {
  return { error: reply.message };
}

/** The native API's shape (dSock's). */
export function nativeErrorBody(reply: ErrorReply): Record<string, unknown> {
  return { success: false, error: reply.message, errorCode: reply.errorCode };
}
