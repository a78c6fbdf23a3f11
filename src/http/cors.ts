import type { IncomingMessage, ServerResponse } from 'node:http';
import { OriginMatcher } from '../util/origin-pattern.js';
import { sendJson } from './respond.js';

/** What the APIs take: GET/POST, a JSON or form body, and the native API's Bearer token. */
const ALLOW_METHODS = 'GET, POST, OPTIONS';
const ALLOW_HEADERS = 'Authorization, Content-Type, X-Requested-With, X-Pusher-Library';
/** Read by a browser client backing off after 429. */
const EXPOSE_HEADERS = 'Retry-After';
const PREFLIGHT_MAX_AGE_S = '600';

const APP_PATH = /^\/apps\/([^/]+)\//;

/**
 * Which browser origins may call the HTTP APIs: the server's list, plus the app's own list for
 * its Pusher REST paths (`/apps/{id}/…`). The native API names its app by a token, which a
 * preflight does not carry, so there any app's list admits the origin; the token still decides
 * which app the call reaches.
 */
export class CorsPolicy {
  private readonly server: OriginMatcher;
  private readonly perApp: ReadonlyMap<string, OriginMatcher>;
  private readonly anyApp: OriginMatcher;

  constructor(serverOrigins: readonly string[], apps: readonly { id: string; corsOrigins: readonly string[] }[]) {
    this.server = new OriginMatcher(serverOrigins);
    this.perApp = new Map(apps.map((app) => [app.id, new OriginMatcher(app.corsOrigins)]));
    this.anyApp = new OriginMatcher(apps.flatMap((app) => app.corsOrigins));
  }

  /** Off unless some list is set: no CORS headers at all then. */
  get enabled(): boolean {
    return !this.server.isEmpty || !this.anyApp.isEmpty;
  }

  allows(origin: string, path: string): boolean {
    if (this.server.allows(origin)) return true;
    const appId = APP_PATH.exec(path)?.[1];
    if (appId === undefined) return this.anyApp.allows(origin);
    let id: string;
    try {
      id = decodeURIComponent(appId);
    } catch {
      return false;
    }
    return this.perApp.get(id)?.allows(origin) ?? false;
  }

  /**
   * Adds the CORS headers to a request from an allowed origin and answers its preflight; true
   * when the request has been answered (a preflight) and routing must stop.
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    const origin = req.headers.origin;
    if (origin === undefined) return false;
    res.setHeader('Vary', 'Origin');
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!this.allows(origin, path)) {
      // A refused actual request is still served (its credentials decide); the browser keeps the answer from the page.
      if (preflight) sendJson(res, 403, { error: 'Origin not allowed' });
      return preflight;
    }
    res.setHeader('Access-Control-Allow-Origin', origin);
    if (!preflight) {
      res.setHeader('Access-Control-Expose-Headers', EXPOSE_HEADERS);
      return false;
    }
    res.writeHead(204, {
      'Access-Control-Allow-Methods': ALLOW_METHODS,
      'Access-Control-Allow-Headers': ALLOW_HEADERS,
      'Access-Control-Max-Age': PREFLIGHT_MAX_AGE_S,
      'Content-Length': 0,
    });
    res.end();
    return true;
  }
}
