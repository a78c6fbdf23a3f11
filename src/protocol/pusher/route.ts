import type { IncomingMessage } from 'node:http';
import type { App } from '../../core/app.js';
import { decodeOrKeep } from '../../util/decode.js';
import type { ClientLink, LinkHandler } from '../../transport/seam.js';
import type { Admission, UpgradeRoute } from '../../transport/seam.js';
import { isOriginAllowed } from '../native/auth.js';
import { CounterName } from '../../core/counters.js';
import type { RequestTarget } from '../../util/request-target.js';
import { PusherCode } from './close-codes.js';
import { encodeConnectionEstablished, encodeError } from './codec.js';
import { PusherSession, type SessionContext } from './session.js';

export interface PusherRouteOptions extends SessionContext {
  readonly appByKey: (key: string) => App | undefined;
  readonly nextSocketId: () => string;
  readonly activityTimeoutSeconds: number;
  /** Node-wide connection cap, 0 for none. */
  readonly maxConnections: number;
}

const PATH = /^\/app\/([^/]+)\/?$/;
const MIN_PROTOCOL = 5;

/** Handles a socket that must be refused after the handshake, as Pusher clients expect a close code. */
class RefusedLink implements LinkHandler {
  constructor(link: ClientLink, code: number, message: string) {
    link.sendText(encodeError(code, message));
    link.close(code, message);
  }
  onMessage(): void {}
  onIdle(): void {}
  onPongTimeout(): void {}
  onOverflow(): void {}
  onDropped(): void {}
  onClose(): void {}
}

/** `ws://host/app/{key}?protocol=7`: the Pusher front-end's entry. */
export function pusherRoute(options: PusherRouteOptions): UpgradeRoute {
  return {
    protocol: 'pusher',
    matches: (path) => path.startsWith('/app/'),
    // Origins are checked before the handshake, as browsers cannot be told a close code for it anyway.
    admit(req: IncomingMessage, url: RequestTarget): Admission {
      const key = PATH.exec(url.pathname)?.[1];
      const app = key === undefined ? undefined : options.appByKey(decodeOrKeep(key));
      if (app && !isOriginAllowed(app, req.headers.origin)) return { ok: false, status: 403, body: { error: 'Origin not allowed' } };
      return { ok: true };
    },
    open(link: ClientLink, _req: IncomingMessage, url: RequestTarget): LinkHandler {
      const match = PATH.exec(url.pathname);
      if (!match) return new RefusedLink(link, PusherCode.PathNotFound, 'Path not found: use /app/{key}');
      // Lenient, as the reference servers are: a client that names no protocol, or a newer one,
      // is served protocol 7 (every client in use speaks it); only drafts before 5 are refused.
      const protocol = url.searchParams.get('protocol');
      if (protocol !== null) {
        if (!/^\d+$/.test(protocol)) return new RefusedLink(link, PusherCode.InvalidVersion, 'Invalid protocol version');
        if (Number(protocol) < MIN_PROTOCOL) return new RefusedLink(link, PusherCode.UnsupportedProtocol, `Unsupported protocol version ${protocol.slice(0, 20)}`);
      }
      const app = options.appByKey(decodeOrKeep(match[1]));
      if (!app) return new RefusedLink(link, PusherCode.AppNotFound, 'Application does not exist');
      if (!app.enabled) return new RefusedLink(link, PusherCode.AppDisabled, 'Application is disabled');
      link.attribute(app.id);

      if (options.maxConnections > 0 && options.hub.size >= options.maxConnections) {
        options.counters.increment(app.id, CounterName.ConnectionsRefusedCapacity);
        return new RefusedLink(link, PusherCode.OverCapacity, 'Server is over capacity, try again later');
      }
      const session = new PusherSession(options.nextSocketId(), app, link, options);
      if (!options.hub.addConnection(session)) {
        session.onClose(); // never joined the hub: this only stops its idle timer
        options.counters.increment(app.id, CounterName.ConnectionsRefusedQuota);
        return new RefusedLink(link, PusherCode.OverConnectionQuota, 'Application is over its connection quota');
      }
      link.sendText(encodeConnectionEstablished(session.id, options.activityTimeoutSeconds));
      return session;
    },
  };
}
