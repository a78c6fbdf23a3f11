import { withoutSecrets } from '../apps/manage.js';
import { manageApps, type AppManagementContext } from '../http/admin-api.js';

export interface DashboardAppsContext extends AppManagementContext {
  /** `config`, `postgres`, `mysql` or `dynamodb`: the config file is listed, never written. */
  readonly storeKind: string;
}

export interface AppsAnswer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The Apps page's own routes, under the dashboard's /api: list, create, edit, enable/disable, rotate. */
const MANAGED = /^\/apps(?:\/[^/]+(\/disable|\/enable|\/rotate-secret)?)?$/;

/**
 * The Apps page, run by the admin API's own code (manageApps) behind the dashboard session.
 * Secrets are answered once, to a create or a rotation (the page shows them then, and never
 * again); a list or an edit answers without them, and one app is not read with its secrets.
 * Returns undefined for the dashboard's other app routes (the live view, console, publish).
 */
export async function dashboardApps(method: string, api: string, body: () => Promise<unknown>, ctx: DashboardAppsContext): Promise<AppsAnswer | undefined> {
  const match = MANAGED.exec(api);
  if (!match) return undefined;
  const isList = api === '/apps';
  const action = match[1];
  const allowed = isList ? method === 'GET' || method === 'POST' : action !== undefined ? method === 'POST' : method === 'PATCH';
  if (!allowed) return undefined;
  const answer = await manageApps({ method, path: `/admin${api}`, body }, ctx);
  const result = answer.body;
  // An audit line per change: which app and what, never a setting's value (secrets among them).
  if (method !== 'GET' && result !== undefined && 'app' in result) ctx.log.info({ app: result.app['id'], change: action?.slice(1) ?? (isList ? 'create' : 'edit'), from: 'dashboard' }, 'app changed');
  if (result === undefined) return { status: answer.status, body: {} };
  if ('apps' in result) return { status: answer.status, body: { apps: result.apps, editable: ctx.storeKind !== 'config', store: ctx.storeKind } };
  const showSecrets = (isList && method === 'POST') || action === '/rotate-secret';
  return { status: answer.status, body: { app: showSecrets ? result.app : withoutSecrets(result.app) } };
}
