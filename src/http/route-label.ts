import { NATIVE_ROUTES } from './native-api.js';

/** Pusher REST paths under /apps/{id}, with their variable parts named. */
const PUSHER_ROUTES: ReadonlyArray<[RegExp, string]> = [
  [/^\/events$/, '/events'],
  [/^\/batch_events$/, '/batch_events'],
  [/^\/channels$/, '/channels'],
  [/^\/channels\/[^/]+$/, '/channels/:channel'],
  [/^\/channels\/[^/]+\/users$/, '/channels/:channel/users'],
  [/^\/users\/[^/]+\/terminate_connections$/, '/users/:user/terminate_connections'],
  [/^\/stats$/, '/stats'],
];

/** Anything else (scanners, typos) is one label: a path must never become a label of its own. */
const OTHER = 'other';

/**
 * The route of a request as a metrics label: "METHOD template", from a fixed set, so ids,
 * channel names and whatever a client puts in a path never multiply the series.
 */
export function routeLabel(method: string | undefined, path: string): string {
  const verb = method === 'GET' || method === 'POST' ? method : OTHER;
  if (verb === OTHER) return OTHER;
  if (path === '/' || path === '/up' || path === '/ready') return `${verb} ${path}`;
  if (/^\/up\/[^/]+$/.test(path)) return `${verb} /up/:app`;
  const native = `${verb} ${path}`;
  if (NATIVE_ROUTES.has(native)) return native;
  const app = /^\/apps\/[^/]+(\/.*)$/.exec(path);
  if (app) {
    for (const [pattern, template] of PUSHER_ROUTES) if (pattern.test(app[1])) return `${verb} /apps/:app${template}`;
  }
  return OTHER;
}
