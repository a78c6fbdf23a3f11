import type { IncomingHttpHeaders } from 'node:http';
import type { Connection, SignedInUser } from '../core/connection.js';
import { jsonText } from '../util/json.js';
import { hookFailureText, type HookConnection, type HookRunner, type HookResult, type HookUser, type InboundMessage, type SwitchboardHooks } from './hooks.js';
import { InboundOrder } from './inbound-order.js';
import { boundedMetadata } from './metadata.js';

/** Frames of one connection that may wait behind a hook that has not answered yet. */
export const MAX_FRAMES_WAITING_ON_HOOKS = 100;
/** An application's reason, as passed on to the client (a close reason holds at most 123 bytes). */
const MAX_REASON_LENGTH = 100;

/** What the front-ends need to give their connections hooks. */
export interface HookSetup {
  readonly runner: HookRunner;
  readonly maxMetadataBytes: number;
  /** A bug in a front-end's continuation after a hook (logged; the connection is closed by the caller). */
  readonly onError: (err: unknown) => void;
}

/** The upgrade request, as connectionOpened is told about it. */
export interface OpenRequest {
  readonly address: string;
  readonly headers: IncomingHttpHeaders;
  /** Path and query. */
  readonly url: string;
}

export type OpenOutcome = { readonly kind: 'accept' } | { readonly kind: 'reject'; readonly reason: string } | { readonly kind: 'failed'; readonly reason: string };

export type InboundOutcome =
  | { readonly kind: 'deliver' }
  /** Deliver it changed: what is undefined stays as sent. */
  | { readonly kind: 'replace'; readonly event: string | undefined; readonly data: { readonly text: string; readonly isJson: boolean } | undefined }
  | { readonly kind: 'drop' }
  | { readonly kind: 'reject'; readonly message: string }
  | { readonly kind: 'failed'; readonly message: string };

/** How a front-end's protocol takes a message a hook changed. */
export interface InboundRules {
  /** Replacement data goes as JSON even when it is a string. */
  readonly alwaysJson: boolean;
  /** Why the protocol refuses this event name; undefined when it takes it. */
  readonly eventProblem: (event: string) => string | undefined;
}

type Notification = 'subscribed' | 'unsubscribed' | 'signedIn' | 'connectionClosed';

/** Calls `f` on a value now, or on a promised value when it comes: sync in, sync out. */
function then<T, U>(value: T | Promise<T>, f: (value: T) => U): U | Promise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

export function hookUser(user: SignedInUser | HookUser | undefined): HookUser | undefined {
  if (!user) return undefined;
  return { id: user.id, ...(user.session === undefined ? {} : { session: user.session }), ...(user.info === undefined ? {} : { info: user.info }) };
}

/** One connection as the application's hooks see it. */
class HookConnectionView implements HookConnection {
  constructor(
    private readonly conn: Connection,
    readonly address: string,
    private readonly maxMetadataBytes: number,
  ) {}
  get id(): string {
    return this.conn.id;
  }
  get appId(): string {
    return this.conn.app.id;
  }
  get protocol(): 'pusher' | 'native' {
    return this.conn.protocol;
  }
  get user(): HookUser | undefined {
    return hookUser(this.conn.user);
  }
  get channels(): ReadonlySet<string> {
    return this.conn.channels;
  }
  get metadata(): unknown {
    return this.conn.metadata;
  }
  setMetadata(value: unknown): void {
    this.conn.metadata = boundedMetadata(value, this.maxMetadataBytes);
  }
}

/**
 * The hooks of one connection, for its front-end: runs them and turns what they answer into
 * outcomes the front-end puts on its own wire. A connection gets one only when hooks are set.
 */
export class ConnectionHooks {
  readonly view: HookConnection;
  /** Frames wait here while a hook that holds them (opened, clientEvent, publish) has not answered. */
  readonly order: InboundOrder;
  private readonly hooks: SwitchboardHooks;
  /** connectionClosed is owed only to connections that connectionOpened let in. */
  private accepted = false;

  constructor(
    conn: Connection,
    address: string,
    private readonly setup: HookSetup,
  ) {
    this.view = new HookConnectionView(conn, address, setup.maxMetadataBytes);
    this.order = new InboundOrder(MAX_FRAMES_WAITING_ON_HOOKS, setup.onError);
    this.hooks = setup.runner.hooks;
  }

  opened(headers: IncomingHttpHeaders, url: string, user: HookUser | undefined): OpenOutcome | Promise<OpenOutcome> {
    // Bound: the application may have written its hooks as methods that use `this`.
    const hook = this.hooks.connectionOpened?.bind(this.hooks);
    if (!hook) {
      this.accepted = true;
      return { kind: 'accept' };
    }
    const result = this.setup.runner.run('connectionOpened', hook, { connection: this.view, headers, url, user }, this.view);
    return then(result, (r): OpenOutcome => {
      if (!r.ok) return { kind: 'failed', reason: hookFailureText('connectionOpened', r.why, this.setup.runner.timeoutMs) };
      const verdict = r.value;
      if (verdict === undefined || verdict === null) {
        this.accepted = true;
        return { kind: 'accept' };
      }
      if (typeof verdict === 'object' && typeof verdict.reject === 'string') return { kind: 'reject', reason: verdict.reject.slice(0, MAX_REASON_LENGTH) };
      this.setup.runner.badVerdict('connectionOpened', this.view, verdict);
      return { kind: 'failed', reason: hookFailureText('connectionOpened', 'threw', this.setup.runner.timeoutMs) };
    });
  }

  /**
   * Tells the application; the frames after this one do not wait for it. `onFailure` gets the
   * text for the client when the hook throws, rejects or times out.
   */
  notify(name: Notification, extra: { channel?: string; code?: number; reason?: string; user?: HookUser }, onFailure: (text: string) => void): void {
    if (name === 'connectionClosed' && !this.accepted) return;
    const hook = (this.hooks[name] as ((event: unknown) => void | Promise<void>) | undefined)?.bind(this.hooks);
    if (!hook) return;
    const result = this.setup.runner.run(name, hook, { connection: this.view, ...extra }, this.view);
    const report = (r: HookResult<void>): void => {
      if (!r.ok) onFailure(hookFailureText(name, r.why, this.setup.runner.timeoutMs));
    };
    if (result instanceof Promise) result.then(report).catch(this.setup.onError);
    else report(result);
  }

  /** Whether the front-end must ask before delivering what the client sends with this action. */
  has(name: 'clientEvent' | 'publish'): boolean {
    return this.hooks[name] !== undefined;
  }

  /**
   * Asks the clientEvent or publish hook about a message. `rules.alwaysJson`: replacement data is
   * sent as JSON even when it is a string (Pusher client events carry JSON values).
   * `rules.eventProblem`: why a name the hook renames the event to is refused by the sender's
   * protocol, undefined when it is a valid name.
   */
  inbound(name: 'clientEvent' | 'publish', message: Omit<InboundMessage, 'connection'>, rules: InboundRules): InboundOutcome | Promise<InboundOutcome> {
    const hook = this.hooks[name]?.bind(this.hooks);
    if (!hook) return { kind: 'deliver' };
    const result = this.setup.runner.run(name, hook, { connection: this.view, ...message }, this.view);
    return then(result, (r): InboundOutcome => {
      if (!r.ok) return { kind: 'failed', message: `${hookFailureText(name, r.why, this.setup.runner.timeoutMs)}; the message was not delivered` };
      const verdict = r.value;
      if (verdict === undefined || verdict === null) return { kind: 'deliver' };
      if (typeof verdict === 'object') {
        if ('reject' in verdict && typeof verdict.reject === 'string') return { kind: 'reject', message: verdict.reject.slice(0, MAX_REASON_LENGTH) };
        if ('drop' in verdict && verdict.drop === true) return { kind: 'drop' };
        if ('data' in verdict || 'event' in verdict) return this.change(name, verdict, rules);
      }
      this.setup.runner.badVerdict(name, this.view, verdict);
      return { kind: 'failed', message: `${hookFailureText(name, 'threw', this.setup.runner.timeoutMs)}; the message was not delivered` };
    });
  }

  /** A `{ data?, event? }` verdict, checked: the new name against the protocol's rule, the data as JSON. */
  private change(name: 'clientEvent' | 'publish', verdict: { readonly data?: unknown; readonly event?: unknown }, rules: InboundRules): InboundOutcome {
    let event: string | undefined;
    if ('event' in verdict) {
      const problem = typeof verdict.event === 'string' ? rules.eventProblem(verdict.event) : 'the event name must be a string';
      if (problem !== undefined) {
        this.setup.runner.badEventName(name, this.view, problem);
        return { kind: 'failed', message: `The application's ${name} hook answered an invalid event name (${problem}); the message was not delivered` };
      }
      event = verdict.event as string;
    }
    if (!('data' in verdict)) return { kind: 'replace', event, data: undefined };
    if (typeof verdict.data === 'string' && !rules.alwaysJson) return { kind: 'replace', event, data: { text: verdict.data, isJson: false } };
    const text = verdict.data === undefined ? undefined : jsonText(verdict.data);
    if (text !== undefined) return { kind: 'replace', event, data: { text, isJson: true } };
    this.setup.runner.badVerdict(name, this.view, verdict);
    return { kind: 'failed', message: `${hookFailureText(name, 'threw', this.setup.runner.timeoutMs)}; the message was not delivered` };
  }
}
