import type { IncomingMessage } from 'node:http';
import { errors as joseErrors, jwtVerify } from 'jose';
import type { App } from '../../core/app.js';
import type { ClaimStore } from '../../core/claims.js';
import { jsonText } from '../../util/json.js';
import type { NativeRefusalCode } from './codes.js';
import type { RequestTarget } from '../../util/request-target.js';

/** Who a native connection is, as its credentials say. */
export interface NativeIdentity {
  readonly user?: { readonly id: string; readonly session?: string | undefined; readonly info?: unknown };
  /** Private and presence channels this connection may join; undefined allows none. */
  readonly channels?: readonly string[];
}

export type NativeAuthResult =
  | { ok: true; identity: NativeIdentity }
  | { ok: false; status: RefusalStatus; errorCode: NativeRefusalCode; error: string };

/**
 * 401/403: these credentials are refused. 502/503: the auth webhook is failing, so the client
 * (and the operator watching status codes) can tell an outage from a bad session.
 */
type RefusalStatus = 401 | 403 | 502 | 503;

/** dSock: a JWT with only `iat` is good for this long. */
const IAT_LIFETIME_SECONDS = 60;

/** An auth webhook's answer is an identity: a few hundred bytes, never megabytes. */
const MAX_WEBHOOK_ANSWER_BYTES = 64 * 1024;

const fail = (status: RefusalStatus, errorCode: NativeRefusalCode, error: string): NativeAuthResult => ({ ok: false, status, errorCode, error });

/**
 * Authenticates a native connection before the upgrade. Credentials are tried in a fixed
 * order: a single-use claim, then a JWT, then the app's auth webhook, then anonymous access.
 */
export async function authenticateNative(app: App, req: IncomingMessage, url: RequestTarget, claims: ClaimStore, clientAddress: () => string): Promise<NativeAuthResult> {
  const claimId = url.searchParams.get('claim');
  if (claimId) {
    const taken = await claims.take(app.id, claimId);
    if (!taken.ok) return fail(401, taken.error, taken.error === 'MISSING_CLAIM' ? 'Claim not found (or already used)' : 'Claim has expired');
    const { user, session, channels } = taken.claim;
    return { ok: true, identity: { user: { id: user, session }, ...(channels ? { channels } : {}) } };
  }

  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const jwt = url.searchParams.get('jwt') ?? url.searchParams.get('token') ?? bearer;
  // Without a JWT secret, an app with an auth webhook lets the webhook judge the Authorization header (cadsock).
  if (jwt && (app.jwtSecret !== undefined || !app.authWebhookUrl)) return verifyJwt(app, jwt);

  if (app.authWebhookUrl) return callAuthWebhook(app, req, clientAddress);
  if (app.allowAnonymous) return { ok: true, identity: {} };
  return fail(401, 'MISSING_AUTHENTICATION', 'No claim, JWT or session given');
}

async function verifyJwt(app: App, token: string): Promise<NativeAuthResult> {
  if (!app.jwtSecret) return fail(401, 'INVALID_JWT', 'JWT authentication is not enabled for this app');
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, new TextEncoder().encode(app.jwtSecret), { algorithms: ['HS256'] }));
  } catch (err) {
    const expired = err instanceof joseErrors.JWTExpired;
    return fail(401, 'INVALID_JWT', expired ? 'JWT has expired' : 'JWT is malformed or not signed with the app secret');
  }
  if (typeof payload.sub !== 'string' || payload.sub === '') return fail(401, 'INVALID_JWT', 'JWT needs a sub (user id)');
  if (payload.exp === undefined) {
    if (typeof payload.iat !== 'number') return fail(401, 'INVALID_JWT', 'JWT needs exp or iat');
    const age = Date.now() / 1000 - payload.iat;
    if (age > IAT_LIFETIME_SECONDS) return fail(401, 'INVALID_JWT', 'JWT has expired');
    // Issued "in the future" would stretch the 60 s life to whatever the signer wrote.
    if (age < -IAT_LIFETIME_SECONDS) return fail(401, 'INVALID_JWT', 'JWT iat is in the future');
  }
  const channels = stringList(payload.channels);
  if (payload.channels !== undefined && !channels) return fail(401, 'INVALID_JWT', 'JWT channels must be a list of strings');
  const problem = userProblem(app, payload.sub, payload.info);
  if (problem) return fail(401, 'INVALID_JWT', `JWT ${problem}`);
  return {
    ok: true,
    identity: {
      user: { id: payload.sub, session: typeof payload.sid === 'string' ? payload.sid : undefined, info: payload.info },
      ...(channels ? { channels } : {}),
    },
  };
}

/**
 * cadsock's flow: ask the backend who this is, forwarding the browser's cookies and
 * credentials; 200 with `{"id": ...}` accepts, anything else refuses.
 */
async function callAuthWebhook(app: App, req: IncomingMessage, clientAddress: () => string): Promise<NativeAuthResult> {
  const headers: Record<string, string> = { Accept: 'application/json', 'X-Switchboard-App': app.id };
  const forward = { cookie: 'Cookie', authorization: 'Authorization', origin: 'Origin', 'user-agent': 'User-Agent' } as const;
  for (const [from, to] of Object.entries(forward)) {
    const value = req.headers[from];
    if (typeof value === 'string') headers[to] = value;
  }
  const address = clientAddress();
  if (address) headers['X-Forwarded-For'] = address;

  let response: Response;
  try {
    response = await fetch(app.authWebhookUrl as string, { headers, signal: AbortSignal.timeout(app.authWebhookTimeoutMs), redirect: 'manual' });
  } catch (err) {
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    return fail(503, 'AUTH_WEBHOOK_FAILED', timedOut ? 'The auth webhook did not answer in time' : 'The auth webhook could not be reached');
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    if (response.status >= 500) return fail(502, 'AUTH_WEBHOOK_FAILED', `The auth webhook failed (it answered ${response.status})`);
    // Any other answer (401, a redirect to a login page…) is the backend saying no.
    return fail(response.status === 403 ? 403 : 401, 'AUTH_REFUSED', `The auth webhook answered ${response.status}`);
  }
  const text = await readAnswer(response, MAX_WEBHOOK_ANSWER_BYTES);
  if (text === undefined) return fail(401, 'AUTH_REFUSED', `The auth webhook's answer was cut off or larger than ${MAX_WEBHOOK_ANSWER_BYTES} bytes`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return fail(401, 'AUTH_REFUSED', 'The auth webhook answered with something that is not JSON');
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if ((typeof b.id !== 'string' && !Number.isSafeInteger(b.id)) || b.id === '') return fail(401, 'AUTH_REFUSED', 'The auth webhook gave no id (a string or an integer)');
  const problem = userProblem(app, String(b.id), b.info);
  if (problem) return fail(401, 'AUTH_REFUSED', `The auth webhook's ${problem}`);
  const channels = stringList(b.channels);
  return {
    ok: true,
    identity: {
      user: { id: String(b.id), session: typeof b.session === 'string' ? b.session : undefined, info: b.info },
      ...(channels ? { channels } : {}),
    },
  };
}

/**
 * The limits a Pusher presence member meets (user id length, user_info size) hold for native
 * identities too: they become presence members and travel through the cluster.
 */
function userProblem(app: App, id: string, info: unknown): string | undefined {
  if (id.length > app.maxUserIdLength) return `user id is longer than ${app.maxUserIdLength} characters`;
  if (info === undefined) return undefined;
  const text = jsonText(info);
  if (text === undefined) return 'info is nested too deeply';
  if (Buffer.byteLength(text) > app.maxPresenceUserInfoBytes) return `info is larger than ${app.maxPresenceUserInfoBytes} bytes`;
  return undefined;
}

/** The answer's text, or undefined when it is larger than `limit` bytes or does not arrive whole. */
async function readAnswer(response: Response, limit: number): Promise<string | undefined> {
  if (!response.body) return '';
  if (Number(response.headers.get('content-length') ?? 0) > limit) {
    await response.body.cancel();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    // Leaving the loop early cancels the rest of the body.
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > limit) return undefined;
      chunks.push(chunk);
    }
  } catch {
    return undefined; // reset, or the timeout fired mid-body
  }
  return Buffer.concat(chunks).toString('utf8');
}

function stringList(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value) : undefined;
}

/** An Origin header must be one of the app's allowed origins; no header (not a browser) passes. */
export function isOriginAllowed(app: App, origin: string | undefined): boolean {
  return origin === undefined || app.allowedOrigins.length === 0 || app.allowedOrigins.includes(origin);
}

/**
 * Whether a browser page on another site could be using this upgrade to ride on the user's
 * cookies (cross-site WebSocket hijacking): its Origin names a host other than the one the
 * request was sent to. A page cannot set Host or X-Forwarded-Host on a WebSocket, so either
 * matching (the latter for a proxy that rewrites Host) shows the page is this site's own.
 */
export function isCrossSite(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false; // not a browser: it has no cookies of the user's to ride on
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    return true; // "null" (a sandboxed frame, a file:) or garbage: not this site
  }
  const forwarded = req.headers['x-forwarded-host'];
  const hosts = [req.headers.host, typeof forwarded === 'string' ? forwarded.split(',')[0]?.trim() : undefined];
  return !hosts.some((host) => host !== undefined && host.toLowerCase() === originHost);
}
