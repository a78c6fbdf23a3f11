import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../log.js';

/**
 * What an embedding application can hook into. Every hook runs on the node that holds the
 * connection, in the order the client's frames arrived; a hook may return a value or a promise.
 * A hook that throws, rejects or outlives `hookTimeoutMs` costs only its connection (opened)
 * or its message (clientEvent, publish): the client gets a documented error, the server carries on.
 */
export interface SwitchboardHooks {
  /** A client connected. Return `{ reject }` to close it (Pusher 4010 / native 4010) with that reason. */
  connectionOpened?(event: ConnectionOpened): OpenVerdict | Promise<OpenVerdict>;
  /** A connection that `connectionOpened` let in has closed (either side). */
  connectionClosed?(event: ConnectionClosed): void | Promise<void>;
  /** The connection joined a channel (after every check passed). */
  subscribed?(event: ChannelChange): void | Promise<void>;
  /** The client left a channel (not called for the channels a closing connection leaves). */
  unsubscribed?(event: ChannelChange): void | Promise<void>;
  /** The connection became a user: Pusher `pusher:signin`, or a native connection's JWT / claim / auth webhook. */
  signedIn?(event: SignedIn): void | Promise<void>;
  /** A Pusher `client-*` event, before it is delivered. */
  clientEvent?(message: InboundMessage): InboundVerdict | Promise<InboundVerdict>;
  /** A native `{"action":"publish"}` message, before it is delivered. */
  publish?(message: InboundMessage): InboundVerdict | Promise<InboundVerdict>;
}

export type HookName = keyof SwitchboardHooks;

/** A signed-in user of a connection. */
export interface HookUser {
  readonly id: string;
  readonly session?: string | undefined;
  readonly info?: unknown;
}

/** A connection as hooks see it. */
export interface HookConnection {
  readonly id: string;
  readonly appId: string;
  readonly protocol: 'pusher' | 'native';
  /** The client's address (X-Forwarded-For is believed from `trustedProxies` only). */
  readonly address: string;
  readonly user: HookUser | undefined;
  readonly channels: ReadonlySet<string>;
  /** The application's own data for this connection (a JSON copy of what was set); undefined until set. */
  readonly metadata: unknown;
  /**
   * Replaces the metadata. Throws MetadataError when the value does not serialise to JSON or its
   * JSON is larger than `maxConnectionMetadataBytes`. `undefined` clears it.
   */
  setMetadata(value: unknown): void;
}

export interface ConnectionOpened {
  readonly connection: HookConnection;
  /** The upgrade request's headers (cookies included: never log them whole). */
  readonly headers: IncomingHttpHeaders;
  /** Path and query of the upgrade request. */
  readonly url: string;
  /** The identity the native auth gave (JWT, claim, auth webhook); undefined on Pusher connections and anonymous ones. */
  readonly user: HookUser | undefined;
}

export interface ConnectionClosed {
  readonly connection: HookConnection;
  /** The WebSocket close code: the server's own when it closed, else the client's (1005 when it gave none, 1006 when the socket dropped). */
  readonly code: number;
  readonly reason: string;
}

export interface ChannelChange {
  readonly connection: HookConnection;
  readonly channel: string;
}

export interface SignedIn {
  readonly connection: HookConnection;
  readonly user: HookUser;
}

export interface InboundMessage {
  readonly connection: HookConnection;
  readonly channel: string;
  readonly event: string;
  /** As the client sent it: any JSON value for a Pusher client event; a string or JSON value for native publish. */
  readonly data: unknown;
}

/** Nothing: let it in. `{ reject }`: close it, telling the client why. */
export type OpenVerdict = void | undefined | { readonly reject: string };

/**
 * Deliver the message changed: `data` instead of what was sent, and/or under the event name
 * `event`. The new name follows the sender's protocol's rule: a Pusher client event keeps the
 * `client-` prefix; a native publish takes any non-empty name not starting with `pusher:` or
 * `pusher_internal:`; both at most `maxEventNameLength` characters.
 */
export type InboundChange = { readonly data: unknown; readonly event?: string } | { readonly event: string };

/**
 * Nothing: deliver as sent. `{ data?, event? }`: deliver it changed. `{ reject }`: do not deliver,
 * and tell the sender why (Pusher 4303 / native MESSAGE_REJECTED). `{ drop: true }`: do not
 * deliver, say nothing.
 */
export type InboundVerdict = void | undefined | InboundChange | { readonly reject: string } | { readonly drop: true };

/** How a hook call ended: its value, or why it has none. */
export type HookResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly why: 'threw' | 'timeout' };

export interface HookRunnerOptions {
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Counts each failure (throw, rejection, timeout) against the connection's app. */
  readonly countFailure: (appId: string) => void;
}

/**
 * Calls the application's hooks. A hook that returns a plain value is answered synchronously (no
 * promise, no timer); a returned promise is raced against the timeout. Throws and rejections are
 * contained here: callers see a HookResult and never an exception.
 */
export class HookRunner {
  constructor(
    readonly hooks: SwitchboardHooks,
    private readonly options: HookRunnerOptions,
  ) {}

  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  run<A, R>(name: HookName, hook: (arg: A) => R | Promise<R>, arg: A, conn: { readonly id: string; readonly appId: string }): HookResult<R> | Promise<HookResult<R>> {
    let returned: R | Promise<R>;
    try {
      returned = hook(arg);
    } catch (err) {
      return this.failed(name, conn, 'threw', err);
    }
    if (!isThenable(returned)) return { ok: true, value: returned };
    return new Promise<HookResult<R>>((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        resolve(this.failed(name, conn, 'timeout', undefined));
      }, this.options.timeoutMs);
      timer.unref();
      // Both branches are handled, so an answer after the timeout is ignored, never an unhandled rejection.
      Promise.resolve(returned).then(
        (value) => {
          if (settled) return;
          clearTimeout(timer);
          resolve({ ok: true, value });
        },
        (err: unknown) => {
          if (settled) return;
          clearTimeout(timer);
          resolve(this.failed(name, conn, 'threw', err));
        },
      );
    });
  }

  /** A hook answered with something that is not one of its verdicts: a bug in the application, counted as a failure. */
  badVerdict(name: HookName, conn: { readonly id: string; readonly appId: string }, verdict: unknown): void {
    this.options.countFailure(conn.appId);
    this.options.log.error({ hook: name, socketId: conn.id, verdict: typeof verdict }, 'a hook returned an unknown verdict');
  }

  /** A hook renamed a message's event to a name its protocol refuses: a bug in the application, counted as a failure. */
  badEventName(name: HookName, conn: { readonly id: string; readonly appId: string }, problem: string): void {
    this.options.countFailure(conn.appId);
    this.options.log.error({ hook: name, socketId: conn.id, problem }, 'a hook answered an invalid event name');
  }

  private failed(name: HookName, conn: { readonly id: string; readonly appId: string }, why: 'threw' | 'timeout', err: unknown): HookResult<never> {
    this.options.countFailure(conn.appId);
    if (why === 'timeout') this.options.log.warn({ hook: name, socketId: conn.id, timeoutMs: this.options.timeoutMs }, 'a hook timed out');
    else this.options.log.error({ hook: name, socketId: conn.id, err }, 'a hook failed');
    return { ok: false, why };
  }
}

function isThenable<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** What a failed hook tells the client, per hook kind. */
export function hookFailureText(name: HookName, why: 'threw' | 'timeout', timeoutMs: number): string {
  const what = why === 'timeout' ? `did not answer within ${timeoutMs} ms` : 'failed';
  return `The application's ${name} hook ${what}`;
}
