import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import type { CorsPolicy } from './cors.js';
import { RequestTarget } from '../util/request-target.js';
import { handleAdminApi, type AdminApiContext } from './admin-api.js';
import { handleNativeApi, type NativeApiContext } from './native-api.js';
import { handlePusherApi, type PusherApiContext } from './pusher-api.js';
import type { ApiRateContext } from './rate-limit.js';
import { HttpError, errorReply, pusherErrorBody } from './errors.js';
import { decodeSegment, sendJson } from './respond.js';
import { routeLabel } from './route-label.js';
import { HTTP_FAILED, type RefusalLog } from '../refusal-log.js';

export interface HttpContext extends PusherApiContext, NativeApiContext, ApiRateContext, AdminApiContext {
  readonly log: Logger;
  /** False while draining: /up answers 503 so load balancers move traffic away. */
  readonly isServing: () => boolean;
  /** A websocket-only node answers health checks but not the APIs. */
  readonly servesApi: boolean;
  /** Set when browser origins may call the APIs. */
  readonly cors?: CorsPolicy;
  /** Told of every answered request, for the metrics: its route (a fixed label), status and duration. */
  readonly onAnswered: (route: string, status: number, seconds: number) => void;
  readonly refusals: RefusalLog;
  /** The web dashboard (dashboard/handler.ts), when a dashboard password is set; false for paths it does not own. */
  readonly dashboard?: ((req: IncomingMessage, res: ServerResponse, url: RequestTarget) => Promise<boolean>) | undefined;
}

/** The server-to-server face: health, the Pusher REST API and the native API. One error → response mapping. */
export function createHttpHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const startedAt = performance.now();
    res.once('finish', () => {
      const path = req.url?.split('?')[0] ?? '/';
      ctx.onAnswered(routeLabel(req.method, path), res.statusCode, (performance.now() - startedAt) / 1000);
    });
    // Draining: this connection is about to be cut, so the client must not reuse it.
    if (!ctx.isServing()) res.shouldKeepAlive = false;
    if (ctx.cors?.handle(req, res, (req.url ?? '/').split('?')[0])) return;
    handle(req, res, ctx).catch((err: unknown) => {
      const reply = errorReply(err);
      if (reply) return sendJson(res, reply.status, pusherErrorBody(reply), reply.headers);
      ctx.refusals.note('', HTTP_FAILED, { err, url: req.url?.split('?')[0] });
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal server error' });
      else res.destroy();
    });
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, ctx: HttpContext): Promise<void> {
  const url = RequestTarget.parse(req.url ?? '/');
  if (!url) throw new HttpError(400, 'Malformed URL');
  const path = url.pathname;
  if (path === '/up' || path === '/') {
    return sendJson(res, ctx.isServing() ? 200 : 503, { ok: ctx.isServing() });
  }
  const up = path.startsWith('/up/') ? /^\/up\/([^/]+)$/.exec(path) : null;
  if (up) {
    const app = await ctx.apps.byId(decodeSegment(up[1]));
    if (!app) throw new HttpError(404, 'Unknown app id');
    return sendJson(res, ctx.isServing() && app.enabled ? 200 : 503, { ok: ctx.isServing() && app.enabled });
  }
  if (path === '/ready') {
    // Ready = serving, connected to the cluster engine, to the app store and (when shared) to the webhook queue; a degraded node still serves its own clients.
    const queue = ctx.webhooks.queueHealthy;
    const ready = ctx.isServing() && ctx.hub.isHealthy && ctx.apps.isAvailable && queue !== false;
    return sendJson(res, ready ? 200 : 503, {
      ready,
      serving: ctx.isServing(),
      cluster: ctx.hub.isHealthy,
      ...(ctx.apps.fromDatabase ? { appStore: ctx.apps.isAvailable } : {}),
      ...(queue === undefined ? {} : { webhookQueue: queue }),
    });
  }
  if (ctx.dashboard && (await ctx.dashboard(req, res, url))) return;
  if (!ctx.servesApi) throw new HttpError(404, 'This node serves WebSockets only');
  if (await handleAdminApi(req, res, url, ctx)) return;
  if (await handlePusherApi(req, res, url, ctx)) return;
  if (await handleNativeApi(req, res, url, ctx)) return;
  throw new HttpError(404, 'Not found');
}
