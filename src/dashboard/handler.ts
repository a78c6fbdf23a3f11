import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppRegistry } from '../apps/registry.js';
import type { DebugTap } from '../core/debug-tap.js';
import { readJsonBody } from '../http/admin-api.js';
import { HttpError } from '../http/errors.js';
import { decodeSegment, parseJsonObject, readBody, sendJson } from '../http/respond.js';
import type { RequestTarget } from '../util/request-target.js';
import { DashboardSessions, LoginLimiter, SESSION_COOKIE, cookieValue } from './sessions.js';
import { dashboardApps, type DashboardAppsContext } from './apps.js';
import { SseStream } from './sse.js';
import { appView, overview, publishFromDashboard, type DashboardHub } from './views.js';

export interface DashboardOptions {
  /** What the sign-in form takes: the dashboard password and/or the admin token (at least one). */
  readonly credentials: readonly string[];
  readonly path: string;
  readonly sessionMinutes: number;
  readonly hub: DashboardHub & { readonly tap: DebugTap };
  readonly apps: AppRegistry;
  /** The Apps page's writes go through the admin API's code with this. */
  readonly manage: DashboardAppsContext;
  readonly isServing: () => boolean;
  readonly clientAddress: (req: IncomingMessage) => string;
}

/** Sign-in attempts per address per minute. */
const LOGIN_ATTEMPTS_PER_MINUTE = 10;
/** Open live streams (overviews and consoles) per node. */
const MAX_STREAMS = 32;
/** Events a slow viewer's stream holds before dropping. */
const MAX_QUEUED_PER_VIEWER = 500;
const OVERVIEW_EVERY_MS = 1_000;
const MAX_BODY_BYTES = 64 * 1024;

/** The page and its assets, built into dist/web by `npm run build`; read once. */
const ASSETS: Record<string, { readonly type: string; readonly file: string }> = {
  '': { type: 'text/html; charset=utf-8', file: 'index.html' },
  '/app.css': { type: 'text/css; charset=utf-8', file: 'app.css' },
  '/main.js': { type: 'text/javascript; charset=utf-8', file: 'main.js' },
  '/apps.js': { type: 'text/javascript; charset=utf-8', file: 'apps.js' },
  '/charts.js': { type: 'text/javascript; charset=utf-8', file: 'charts.js' },
  '/console.js': { type: 'text/javascript; charset=utf-8', file: 'console.js' },
  '/dom.js': { type: 'text/javascript; charset=utf-8', file: 'dom.js' },
};

const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
};

/** Answers a request under the dashboard's path; false for other paths. */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse, url: RequestTarget) => Promise<boolean>;

/**
 * The web dashboard under `path`: the page (public, holds no data), sign-in and sign-out, and
 * JSON and live-stream endpoints that answer 401 without a valid session cookie. State-changing
 * requests must be JSON (which a cross-site form cannot send) from the same origin, on top of
 * the SameSite=Strict cookie. Returns false for paths outside the dashboard.
 */
export function createDashboardHandler(o: DashboardOptions): DashboardHandler {
  const sessions = new DashboardSessions(o.credentials, o.sessionMinutes * 60_000);
  const limiter = new LoginLimiter(LOGIN_ATTEMPTS_PER_MINUTE, 60_000);
  const files = new Map<string, { type: string; body: Buffer }>();
  const webDir = new URL('../../web/', import.meta.url);
  for (const [route, { type, file }] of Object.entries(ASSETS)) files.set(route, { type, body: readFileSync(new URL(file, webDir)) });
  let streams = 0;
  const cookie = (value: string, maxAge: number): string => `${SESSION_COOKIE}=${value}; Path=${o.path}; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`;

  return async (req, res, url) => {
    const path = url.pathname;
    if (path !== o.path && !path.startsWith(`${o.path}/`)) return false;
    const rest = path.slice(o.path.length);
    const method = req.method ?? 'GET';
    if (rest === '') {
      // The page's links are relative: they need the trailing slash.
      res.writeHead(308, { Location: `${o.path}/` });
      res.end();
      return true;
    }
    const asset = files.get(rest === '/' ? '' : rest);
    if (asset && method === 'GET') {
      res.writeHead(200, { 'Content-Type': asset.type, 'Content-Length': asset.body.length, ...SECURITY_HEADERS });
      res.end(asset.body);
      return true;
    }
    if (!rest.startsWith('/api/')) throw new HttpError(404, 'Not found');
    const api = rest.slice('/api'.length);
    if (method !== 'GET' && method !== 'HEAD') checkSameOrigin(req);
    if (method === 'POST' && api === '/login') {
      if (!limiter.attempt(o.clientAddress(req))) throw new HttpError(429, 'Too many sign-in attempts; wait a minute', { 'Retry-After': '60' });
      // `secret`: the dashboard password or the admin token, in the body (never in the URL).
      const { secret } = parseJsonObject(await readBody(req, MAX_BODY_BYTES));
      if (typeof secret !== 'string' || !sessions.credentialMatches(secret)) throw new HttpError(401, 'Wrong password or token');
      sendJson(res, 200, { signedIn: true }, { 'Set-Cookie': cookie(sessions.issue(), sessions.lifetimeSeconds), ...SECURITY_HEADERS });
      return true;
    }
    const signedIn = sessions.valid(cookieValue(req.headers.cookie, SESSION_COOKIE));
    if (method === 'GET' && api === '/session') {
      sendJson(res, 200, { signedIn }, SECURITY_HEADERS);
      return true;
    }
    if (!signedIn) throw new HttpError(401, 'Sign in first');
    if (method === 'POST' && api === '/logout') {
      sendJson(res, 200, { signedIn: false }, { 'Set-Cookie': cookie('', 0), ...SECURITY_HEADERS });
      return true;
    }
    if (method === 'GET' && api === '/overview') {
      sendJson(res, 200, await overview(o.hub, o.apps, o.isServing()), SECURITY_HEADERS);
      return true;
    }
    if (method === 'GET' && api === '/overview/stream') {
      openStream(req, res, (stream) => {
        const tick = (): void => {
          overview(o.hub, o.apps, o.isServing())
            .then((data) => stream.send('overview', data))
            .catch(() => stream.send('error', { error: 'the cluster did not answer' }));
        };
        tick();
        const timer = setInterval(tick, OVERVIEW_EVERY_MS);
        return () => clearInterval(timer);
      });
      return true;
    }
    const managed = await dashboardApps(method, api, () => readJsonBody(req, MAX_BODY_BYTES), o.manage);
    if (managed) {
      sendJson(res, managed.status, managed.body, SECURITY_HEADERS);
      return true;
    }
    const appRoute = /^\/apps\/([^/]+)(\/console|\/publish)?$/.exec(api);
    // A database store may answer with a promise.
    const app = appRoute ? await o.apps.byId(decodeSegment(appRoute[1])) : undefined;
    if (!appRoute || !app) throw new HttpError(404, appRoute ? 'Unknown app id' : 'Not found');
    if (method === 'GET' && !appRoute[2]) {
      sendJson(res, 200, appView(o.hub, app, url.searchParams.get('q') ?? ''), SECURITY_HEADERS);
      return true;
    }
    if (method === 'GET' && appRoute[2] === '/console') {
      openStream(req, res, (stream) => {
        const watch = o.hub.tap.listen(app.id, (entry) => stream.send('entry', entry));
        // The page says "Live" once every node has heard of this console and forwards its lines.
        void watch.ready.then(() => stream.send('ready', { node: o.hub.nodeId }));
        return () => watch.stop();
      });
      return true;
    }
    if (method === 'POST' && appRoute[2] === '/publish') {
      sendJson(res, 200, publishFromDashboard(o.hub, app, parseJsonObject(await readBody(req, MAX_BODY_BYTES))), SECURITY_HEADERS);
      return true;
    }
    throw new HttpError(405, 'Method not allowed');
  };

  function openStream(req: IncomingMessage, res: ServerResponse, start: (stream: SseStream) => () => void): void {
    if (streams >= MAX_STREAMS) throw new HttpError(503, 'Too many dashboard streams open on this node', { 'Retry-After': '5' });
    streams += 1;
    let stop: () => void = () => undefined;
    const stream = new SseStream(req, res, MAX_QUEUED_PER_VIEWER, () => {
      streams -= 1;
      stop();
    });
    stop = start(stream);
  }
}

/**
 * CSRF: a state-changing request must carry a JSON body (a cross-site form cannot, and a
 * cross-site fetch with one needs a CORS preflight we never grant) and, when the browser says
 * where it comes from, come from this very host.
 */
function checkSameOrigin(req: IncomingMessage): void {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(415, 'Send JSON (Content-Type: application/json)');
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    throw new HttpError(403, 'Cross-origin request refused');
  }
  if (host !== req.headers.host) throw new HttpError(403, 'Cross-origin request refused');
}
