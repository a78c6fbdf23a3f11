import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppStoreError } from '../apps/columns.js';
import { type AppManager, withoutSecrets } from '../apps/manage.js';
import type { Logger } from '../log.js';
import { safeEqual } from '../util/hmac.js';
import type { RequestTarget } from '../util/request-target.js';
import { HttpError } from './errors.js';
import { decodeSegment, readBody, sendJson } from './respond.js';

export interface AdminApiContext {
  /** Unset: the admin API is off (404). */
  readonly adminToken: string | undefined;
  readonly appManager: AppManager;
  /** Tells every node of the cluster to re-read the app now. */
  readonly announceAppChanged: (appId: string) => Promise<void>;
  readonly maxRequestBodyBytes: number;
  readonly log: Logger;
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
  const method = req.method ?? 'GET';
  try {
    await route(req, res, url, method, ctx);
  } catch (err) {
    if (err instanceof AppStoreError) throw new HttpError(err.status, err.message);
    throw err;
  }
  return true;
}

async function route(req: IncomingMessage, res: ServerResponse, url: RequestTarget, method: string, ctx: AdminApiContext): Promise<void> {
  const apps = ctx.appManager;
  const body = async (): Promise<unknown> => {
    const raw = await readBody(req, ctx.maxRequestBodyBytes);
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      throw new HttpError(400, 'Body must be JSON');
    }
  };
  const changed = async (id: string): Promise<void> => {
    // The write is done: a node that misses the news still sees it within its cache TTL.
    await ctx.announceAppChanged(id).catch((err: unknown) => ctx.log.warn({ app: id, err: (err as Error).message }, 'could not tell every node of an app change; they see it within the cache TTL'));
  };
  if (url.pathname === '/admin/apps') {
    if (method === 'GET') {
      const stored = await apps.list();
      return sendJson(res, 200, { apps: stored.map((s) => (s.ok ? withoutSecrets(s.app) : { id: s.id, invalid: s.reason })) });
    }
    if (method === 'POST') {
      const app = await apps.create(await body());
      await changed(app.id);
      return sendJson(res, 201, { app });
    }
    throw new HttpError(405, 'Use GET or POST on /admin/apps', { Allow: 'GET, POST' });
  }
  const match = APP_PATH.exec(url.pathname);
  if (!match) throw new HttpError(404, 'Not found');
  const id = decodeSegment(match[1]);
  const action = match[2];
  if (action !== undefined) {
    if (method !== 'POST') throw new HttpError(405, `Use POST on ${action}`, { Allow: 'POST' });
    const app = action === '/rotate-secret' ? await apps.rotateSecret(id) : await apps.setEnabled(id, action === '/enable');
    await changed(id);
    return sendJson(res, 200, { app });
  }
  if (method === 'GET') return sendJson(res, 200, { app: await apps.get(id) });
  if (method === 'PATCH' || method === 'PUT') {
    const app = await apps.update(id, await body());
    await changed(id);
    return sendJson(res, 200, { app });
  }
  if (method === 'DELETE') {
    await apps.remove(id);
    await changed(id);
    res.writeHead(204).end();
    return;
  }
  throw new HttpError(405, 'Use GET, PATCH or DELETE on an app', { Allow: 'GET, PATCH, DELETE' });
}
