import type { IncomingMessage } from 'node:http';
import type { App } from '../../core/app.js';
import type { AppLookup } from '../../apps/registry.js';
import { decodeOrKeep } from '../../util/decode.js';
import type { ClientLink, LinkHandler } from '../../transport/seam.js';
import type { Admission, UpgradeRoute } from '../../transport/seam.js';
import { isOriginAllowed } from '../native/auth.js';
import { CounterName } from '../../core/counters.js';
import type { RequestTarget } from '../../util/request-target.js';
import { PusherCode } from './close-codes.js';
import { encodeError } from './codec.js';
import { PusherSession, type SessionContext } from './session.js';

export interface PusherRouteOptions extends SessionContext {
  /** Throws (or rejects) when the app store cannot be asked: the client is told to retry. */
  readonly appByKey: (key: string) => AppLookup;
  readonly nextSocketId: () => string;
  readonly activityTimeoutSeconds: number;
  /** Node-wide connection cap, 0 for none. */
  readonly maxConnections: number;
  readonly clientAddress: (req: IncomingMessage) => string;
}

const PATH = /^\/app\/([^/]+)\/?$/;
const MIN_PROTOCOL = 5;

/** What admission learned of the key: the app, none, or that the store could not be asked. */
type KeyLookup = { readonly app: App | undefined } | { readonly unavailable: true };

function lookUp(appByKey: (key: string) => AppLookup, key: string): KeyLookup | Promise<KeyLookup> {
  const unavailable = (): KeyLookup => ({ unavailable: true });
  let found: AppLookup;
  try {
    found = appByKey(key);
  } catch {
    return unavailable();
  }
  return found instanceof Promise ? found.then((app) => ({ app }), unavailable) : { app: found };
}

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
    // The app is looked up here, where waiting is possible (a database store), and handed to open.
    admit(req: IncomingMessage, url: RequestTarget): Admission | Promise<Admission> {
      const key = PATH.exec(url.pathname)?.[1];
      if (key === undefined) return { ok: true };
      const decide = (found: KeyLookup): Admission => {
        if ('app' in found && found.app && !isOriginAllowed(found.app, req.headers.origin)) return { ok: false, status: 403, body: { error: 'Origin not allowed' } };
        return { ok: true, state: found };
      };
      const found = lookUp(options.appByKey, decodeOrKeep(key));
      return found instanceof Promise ? found.then(decide) : decide(found);
    },
    open(link: ClientLink, req: IncomingMessage, url: RequestTarget, state: unknown): LinkHandler {
      const match = PATH.exec(url.pathname);
      if (!match) return new RefusedLink(link, PusherCode.PathNotFound, 'Path not found: use /app/{key}');
      // Lenient, as the reference servers are: a client that names no protocol, or a newer one,
      // is served protocol 7 (every client in use speaks it); only drafts before 5 are refused.
      const protocol = url.param('protocol');
      if (protocol !== null) {
        if (!/^\d+$/.test(protocol)) return new RefusedLink(link, PusherCode.InvalidVersion, 'Invalid protocol version');
        if (Number(protocol) < MIN_PROTOCOL) return new RefusedLink(link, PusherCode.UnsupportedProtocol, `Unsupported protocol version ${protocol.slice(0, 20)}`);
      }
      const found = state as KeyLookup;
      // 4100: pusher-js reconnects after a back-off, as it never does after 4001.
      if ('unavailable' in found) return new RefusedLink(link, PusherCode.OverCapacity, 'The app store is unavailable, try again later');
      const app = found.app;
      if (!app) return new RefusedLink(link, PusherCode.AppNotFound, 'Application does not exist');
      if (!app.enabled) return new RefusedLink(link, PusherCode.AppDisabled, 'Application is disabled');
      link.attribute(app.id);

      if (options.maxConnections > 0 && options.hub.size >= options.maxConnections) {
        options.counters.increment(app.id, CounterName.ConnectionsRefusedCapacity);
        return new RefusedLink(link, PusherCode.OverCapacity, 'Server is over capacity, try again later');
      }
      const request = options.hooks ? { address: options.clientAddress(req), headers: req.headers, url: req.url ?? url.pathname } : undefined;
      const session = new PusherSession(options.nextSocketId(), app, link, options, request);
      if (!options.hub.addConnection(session)) {
        session.onClose(); // never joined the hub: this only stops its idle timer
        options.counters.increment(app.id, CounterName.ConnectionsRefusedQuota);
        return new RefusedLink(link, PusherCode.OverConnectionQuota, 'Application is over its connection quota');
      }
      session.begin(request, options.activityTimeoutSeconds);
      return session;
    },
  };
}
