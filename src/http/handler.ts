import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log.js';
import { RequestTarget } from '../util/request-target.js';
import { handleNativeApi, type NativeApiContext } from './native-api.js';
import { handlePusherApi, type PusherApiContext } from './pusher-api.js';
import type { ApiRateContext } from './rate-limit.js';
import { HttpError, errorReply, pusherErrorBody } from './errors.js';
import { decodeSegment, sendJson } from './respond.js';

export interface HttpContext extends PusherApiContext, NativeApiContext, ApiRateContext {
  readonly log: Logger;
  /** False while draining: /up answers 503 so load balancers move traffic away. */
  readonly isServing: () => boolean;
  /** A websocket-only node answers health checks but not the APIs. */
  readonly servesApi: boolean;
  /** The web dashboard (dashboard/handler.ts), when a dashboard password is set; false for paths it does not own. */
  readonly dashboard?: ((req: IncomingMessage, res: ServerResponse, url: RequestTarget) => Promise<boolean>) | undefined;
}

/** The server-to-server face: health, the Pusher REST API and the native API. One error → response mapping. */
export function createHttpHandler(ctx: HttpContext): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    // Draining: this connection is about to be cut, so the client must not reuse it.
    if (!ctx.isServing()) res.shouldKeepAlive = false;
    handle(req, res, ctx).catch((err: unknown) => {
      const reply = errorReply(err);
      if (reply) return sendJson(res, reply.status, pusherErrorBody(reply), reply.headers);
      ctx.log.error({ err, url: req.url?.split('?')[0] }, 'HTTP handler failed');
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
  const up = /^\/up\/([^/]+)$/.exec(path);
  if (up) {
    const app = ctx.apps.byId(decodeSegment(up[1]));
    if (!app) throw new HttpError(404, 'Unknown app id');
    return sendJson(res, ctx.isServing() && app.enabled ? 200 : 503, { ok: ctx.isServing() && app.enabled });
  }
  if (path === '/ready') {
    // Ready = serving and connected to the cluster engine; a degraded node still serves its own clients.
    const ready = ctx.isServing() && ctx.hub.isHealthy;
    return sendJson(res, ready ? 200 : 503, { ready, serving: ctx.isServing(), cluster: ctx.hub.isHealthy });
  }
  if (ctx.dashboard && (await ctx.dashboard(req, res, url))) return;
  if (!ctx.servesApi) throw new HttpError(404, 'This node serves WebSockets only');
  if (await handlePusherApi(req, res, url, ctx)) return;
  if (await handleNativeApi(req, res, url, ctx)) return;
  throw new HttpError(404, 'Not found');
}
