import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { HttpError, errorReply, pusherErrorBody } from '../http/errors.js';
import { sendJson } from '../http/respond.js';
import type { Logger } from '../log.js';
import type { CertificateReloader } from '../transport/tls.js';
import { RequestTarget } from '../util/request-target.js';
import { listen } from '../util/listen.js';
import type { DashboardHandler } from './handler.js';

/**
 * The dashboard alone on its own listener (dashboardPort), so it can be bound to an inside
 * interface while the main port faces the world: `/` leads to the dashboard's path, every other
 * path is 404. With `tls`, it is served over HTTPS with the server's certificate.
 */
export async function startDashboardServer(
  dashboard: DashboardHandler,
  path: string,
  host: string,
  port: number,
  log: Logger,
  tls?: CertificateReloader,
): Promise<{ server: Server; port: number }> {
  const answer = (req: IncomingMessage, res: ServerResponse): void => {
    serve(req, res).catch((err: unknown) => {
      const reply = errorReply(err);
      if (reply) return sendJson(res, reply.status, pusherErrorBody(reply), reply.headers);
      log.error({ err }, 'a dashboard request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal server error' });
      else res.destroy();
    });
  };
  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = RequestTarget.parse(req.url ?? '/');
    if (!url) throw new HttpError(400, 'Malformed URL');
    if (url.pathname === '/') {
      res.writeHead(308, { Location: `${path}/` }).end();
      return;
    }
    if (!(await dashboard(req, res, url))) throw new HttpError(404, `Not found: this port serves the dashboard, under ${path}/`);
  };
  const server: Server = tls ? tls.serve(createHttpsServer(tls.options(), answer)) : createServer(answer);
  return { server, port: await listen(server, port, host) };
}
