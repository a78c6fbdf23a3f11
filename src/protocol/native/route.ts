import type { IncomingMessage } from 'node:http';
import type { App } from '../../core/app.js';
import type { AppLookup } from '../../apps/registry.js';
import type { ClaimStore } from '../../core/claims.js';
import { closeReasonText } from '../../core/connection.js';
import { CounterName, type Counters } from '../../core/counters.js';
import type { Hub } from '../../core/hub.js';
import { decodeOrKeep } from '../../util/decode.js';
import type { ClientLink, LinkHandler } from '../../transport/seam.js';
import type { Admission, UpgradeRoute } from '../../transport/seam.js';
import type { RequestTarget } from '../../util/request-target.js';
import { NativeClose, type NativeRefusalCode } from './codes.js';
import { authenticateNative, isCrossSite, isOriginAllowed, type NativeIdentity } from './auth.js';
import { nativeFormatNamed } from './codec.js';
import { NativeSession, channelPasswordGiven } from './session.js';
import type { HookSetup } from '../../embedding/connection-hooks.js';

export interface NativeRouteOptions {
  readonly hub: Hub;
  /** Refusals and losses per app. */
  readonly counters: Counters;
  readonly claims: ClaimStore;
  /** Throws (or rejects) when the app store cannot be asked. */
  readonly appByKey: (key: string) => AppLookup;
  /** The app served on `/ws` and `/connect` without a key (none with a database store). */
  readonly defaultApp: App | undefined;
  readonly nextSocketId: () => string;
  readonly maxConnections: number;
  /** Native clients do not ping on their own: the server pings them after this much silence. */
  readonly pingAfterMs: number;
  readonly clientAddress: (req: IncomingMessage) => string;
  /** The embedding application's hooks, when it set any. */
  readonly hooks?: HookSetup | undefined;
}

interface Admitted {
  readonly app: App;
  readonly identity: NativeIdentity;
}

const PATH = /^\/(?:ws|connect)(?:\/([^/]+))?\/?$/;

const refuse = (status: number, errorCode: NativeRefusalCode, error: string): Admission => ({ ok: false, status, body: { success: false, error, errorCode } });

/** `/ws`, `/ws/{appKey}` and dSock's `/connect`: the native front-end's entry. */
export function nativeRoute(options: NativeRouteOptions): UpgradeRoute {
  return {
    protocol: 'native',
    matches: (path) => PATH.test(path),
    async admit(req: IncomingMessage, url: RequestTarget, clientAddress: () => string): Promise<Admission> {
      const key = PATH.exec(url.pathname)?.[1];
      let app: App | undefined;
      try {
        app = key === undefined ? options.defaultApp : await options.appByKey(decodeOrKeep(key));
      } catch {
        return { ok: false, status: 503, body: { success: false, error: 'The app store is unavailable, try again shortly', errorCode: 'APP_STORE_UNAVAILABLE' }, retryAfter: 1 };
      }
      if (!app) return refuse(404, 'APP_NOT_FOUND', key === undefined ? 'Name an app key: /ws/{appKey}' : 'Unknown app key');
      if (!app.enabled) return refuse(403, 'APP_DISABLED', 'Application is disabled');
      if (!isOriginAllowed(app, req.headers.origin)) return refuse(403, 'ORIGIN_NOT_ALLOWED', 'Origin not allowed');
      // The auth webhook gets the browser's cookies: without an allow-list, only this site's own
      // pages may use them (as cadsock and gorilla/websocket refuse by default).
      if (app.authWebhookUrl && app.allowedOrigins.length === 0 && isCrossSite(req)) {
        return refuse(403, 'ORIGIN_NOT_ALLOWED', 'Origin is another site: list it in allowedOrigins to let its pages connect with their cookies');
      }
      // A room named in the URL with the wrong password is refused before the upgrade, as plumego does.
      const room = url.searchParams.get('channel') ?? url.searchParams.get('room');
      if (room !== null && !channelPasswordGiven(app, room, url.searchParams.get('room_password') ?? undefined)) {
        return refuse(403, 'WRONG_PASSWORD', 'This channel needs its password');
      }
      const overCapacity = (): Admission | undefined => {
        if (options.maxConnections === 0 || options.hub.size < options.maxConnections) return undefined;
        options.counters.increment(app.id, CounterName.ConnectionsRefusedCapacity);
        return refuse(503, 'OVER_CAPACITY', 'Server is over capacity');
      };
      const full = overCapacity();
      if (full) return full;
      const auth = await authenticateNative(app, req, url, options.claims, clientAddress);
      if (!auth.ok) {
        options.counters.increment(app.id, CounterName.ConnectionsRefusedAuth);
        // An outage of the backend's auth webhook, not a client's bad credentials: the operator's to fix.
        if (auth.errorCode === 'AUTH_WEBHOOK_FAILED') options.counters.increment(app.id, CounterName.AuthWebhookFailures, 1, auth.error);
        return refuse(auth.status, auth.errorCode, auth.error);
      }
      // Again: others may have been let in while this one waited for its auth webhook.
      const filled = overCapacity();
      if (filled) return filled;
      const admitted: Admitted = { app, identity: auth.identity };
      return { ok: true, state: admitted };
    },
    open(link: ClientLink, req: IncomingMessage, url: RequestTarget, state: unknown): LinkHandler {
      const { app, identity } = state as Admitted;
      link.attribute(app.id);
      // The app's format, unless the client asks for another one.
      const format = nativeFormatNamed(url.searchParams.get('format')) ?? app.nativeFormat;
      const ack = url.searchParams.get('ack');
      link.setPingAfter(options.pingAfterMs);
      const request = options.hooks ? { address: options.clientAddress(req), headers: req.headers, url: req.url ?? url.pathname } : undefined;
      const session = new NativeSession(
        options.nextSocketId(),
        app,
        link,
        options.hub,
        options.counters,
        identity,
        { format, acks: format !== 'raw' || ack === '1' || ack === 'true', hooks: options.hooks },
        request,
      );
      if (!options.hub.addConnection(session)) {
        session.onClose(); // never joined the hub: marks it closed, so what the client still sends is ignored
        options.counters.increment(app.id, CounterName.ConnectionsRefusedQuota);
        link.close(NativeClose.over_quota, closeReasonText.over_quota);
        return session;
      }
      try {
        session.begin(url, request);
      } catch (err) {
        session.onClose(); // it joined the hub: the transport will not call the session again
        throw err;
      }
      return session;
    },
  };
}
