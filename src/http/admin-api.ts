import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppStoreError } from '../apps/columns.js';
import { type AppManager, withoutSecrets } from '../apps/manage.js';
import type { Logger } from '../log.js';
import { safeEqual } from '../util/hmac.js';
import type { RequestTarget } from '../util/request-target.js';
import { HttpError } from './errors.js';
import { decodeSegment, readBody, sendJson } from './respond.js';

/** What managing apps needs: the store behind its checks, and the news to the other nodes. */
export interface AppManagementContext {
  readonly appManager: AppManager;
  /** Tells every node of the cluster to re-read the app now. */
  readonly announceAppChanged: (appId: string) => Promise<void>;
  readonly log: Logger;
}

export interface AdminApiContext extends AppManagementContext {
  /** Unset: the admin API is off (404). */
  readonly adminToken: string | undefined;
  readonly maxRequestBodyBytes: number;
}

/** One request to manage apps: the method, the path under /admin/apps and the JSON body, read on demand. */
export interface AdminRequest {
  readonly method: string;
  /** `/admin/apps`, `/admin/apps/<id>` or `/admin/apps/<id>/<action>`. */
  readonly path: string;
  readonly body: () => Promise<unknown>;
}

/** `app` carries the secrets (create, read, update, rotate); the caller decides what to show. */
export interface AdminAnswer {
  readonly status: number;
  readonly body?: { readonly apps: unknown[] } | { readonly app: Readonly<Record<string, unknown>> };
  readonly headers?: Record<string, string>;
}

const APP_PATH = /^\/admin\/apps\/([^/]+)(\/disable|\/enable|\/rotate-secret)?$/;

/**
 * Managing apps over HTTP, behind the admin token: list, create, read, update, enable/disable,
 * rotate the secret, delete. Returns false for paths that are not this API's.
 */
export async function handleAdminApi(req: IncomingMessage, res: ServerResponse, url: RequestTarget, ctx: AdminApiContext): Promise<boolean> {
  if (url.pathname !== '/admin/apps' && !url.pathname.startsWith('/admin/apps/')) return false;
  if (ctx.adminToken === undefined) throw new HttpError(404, 'The admin API is off: set adminToken');
  const token = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  if (token === undefined || !safeEqual(token, ctx.adminToken)) throw new HttpError(401, 'Give the admin token as Authorization: Bearer', { 'WWW-Authenticate': 'Bearer' });
  const answer = await manageApps({ method: req.method ?? 'GET', path: url.pathname, body: () => readJsonBody(req, ctx.maxRequestBodyBytes) }, ctx);
  if (answer.body === undefined) res.writeHead(answer.status, answer.headers).end();
  else sendJson(res, answer.status, answer.body, answer.headers);
  return true;
}

export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const raw = await readBody(req, limit);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'Body must be JSON');
  }
}

/**
 * What the admin API does, apart from how it is asked: the dashboard's Apps page runs the same
 * code behind its session. Store refusals become HttpErrors of their status.
 */
export async function manageApps(request: AdminRequest, ctx: AppManagementContext): Promise<AdminAnswer> {
  try {
    return await route(request, ctx);
  } catch (err) {
    if (err instanceof AppStoreError) throw new HttpError(err.status, err.message);
    throw err;
  }
}

async function route({ method, path, body }: AdminRequest, ctx: AppManagementContext): Promise<AdminAnswer> {
  const apps = ctx.appManager;
  const changed = async (id: string): Promise<void> => {
    // The write is done: a node that misses the news still sees it within its cache TTL.
    await ctx.announceAppChanged(id).catch((err: unknown) => ctx.log.warn({ app: id, err: (err as Error).message }, 'could not tell every node of an app change; they see it within the cache TTL'));
  };
  if (path === '/admin/apps') {
    if (method === 'GET') {
      const stored = await apps.list();
      return { status: 200, body: { apps: stored.map((s) => (s.ok ? withoutSecrets(s.app) : { id: s.id, invalid: s.reason })) } };
    }
    if (method === 'POST') {
      const app = await apps.create(await body());
      await changed(app.id);
      return { status: 201, body: { app } };
    }
    throw new HttpError(405, 'Use GET or POST on /admin/apps', { Allow: 'GET, POST' });
  }
  const match = APP_PATH.exec(path);
  if (!match) throw new HttpError(404, 'Not found');
  const id = decodeSegment(match[1]);
  const action = match[2];
  if (action !== undefined) {
    if (method !== 'POST') throw new HttpError(405, `Use POST on ${action}`, { Allow: 'POST' });
    const app = action === '/rotate-secret' ? await apps.rotateSecret(id) : await apps.setEnabled(id, action === '/enable');
    await changed(id);
    return { status: 200, body: { app } };
  }
  if (method === 'GET') return { status: 200, body: { app: await apps.get(id) } };
  if (method === 'PATCH' || method === 'PUT') {
    const app = await apps.update(id, await body());
    await changed(id);
    return { status: 200, body: { app } };
  }
  if (method === 'DELETE') {
    await apps.remove(id);
    await changed(id);
    return { status: 204 };
  }
  throw new HttpError(405, 'Use GET, PATCH or DELETE on an app', { Allow: 'GET, PATCH, DELETE' });
}
