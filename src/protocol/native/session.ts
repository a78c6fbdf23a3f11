import type { App } from '../../core/app.js';
import { channelKind, isReservedEventName, isValidNativeChannelName } from '../../core/channels.js';
import { closeReasonText, type CloseReason, type Connection, type ConnectionNotice, type SignedInUser } from '../../core/connection.js';
import type { Hub } from '../../core/hub.js';
import type { WireEncoder } from '../../core/message.js';
import { CounterName, type Counters } from '../../core/counters.js';
import { TokenBucket } from '../../core/token-bucket.js';
import type { ClientLink, LinkHandler } from '../../transport/seam.js';
import { queuePolicyFor, watchIdle } from '../session-limits.js';
import { safeEqual } from '../../util/hmac.js';
import type { RequestTarget } from '../../util/request-target.js';
import { ConnectionHooks, MAX_FRAMES_WAITING_ON_HOOKS, hookUser, type HookSetup, type InboundOutcome, type OpenOutcome, type OpenRequest } from '../../embedding/connection-hooks.js';
import { HeldFrames } from '../../embedding/held-frames.js';
import type { NativeIdentity } from './auth.js';
import { NativeClose, NativeCloseCode, type NativeErrorCode } from './codes.js';
import { NATIVE_WIRES, decodeNative, encodeNativeAck, encodeNativeError, type NativeFormat } from './codec.js';
import { parsePosition } from '../position.js';


export interface NativeSessionOptions {
  readonly format: NativeFormat;
  /** Acknowledge subscribe/unsubscribe (always on with envelopes and cadsock; raw clients opt in with ?ack=1). */
  readonly acks: boolean;
  /** The embedding application's hooks, when it set any. */
  readonly hooks?: HookSetup | undefined;
}

/** Whether `password` opens `channel`: channels without a password in `channelPasswords` need none. */
export function channelPasswordGiven(app: App, channel: string, password: string | undefined): boolean {
  // hasOwn: a channel named like an Object.prototype key ("constructor") must not look protected.
  const required = Object.hasOwn(app.channelPasswords, channel) ? app.channelPasswords[channel] : undefined;
  return required === undefined || (password !== undefined && safeEqual(password, required));
}

/**
 * Why a native publish may not carry this event name (checked on the client's, and again on a
 * name the publish hook gives it); undefined when it may.
 */
export function nativeEventNameProblem(event: unknown, app: App): string | undefined {
  if (typeof event !== 'string' || event === '' || event.length > app.maxEventNameLength) return `event must be a non-empty string of at most ${app.maxEventNameLength} characters`;
  // Pusher subscribers of the channel would take such an event for one of the protocol's own.
  if (isReservedEventName(event)) return 'event names starting with pusher: or pusher_internal: are reserved';
  return undefined;
}

/** True when `name` is on the list, exactly or by a `prefix*` pattern. */
export function channelAllowed(list: readonly string[] | undefined, name: string): boolean {
  if (!list) return false;
  return list.some((entry) => (entry.endsWith('*') ? name.startsWith(entry.slice(0, -1)) : entry === name));
}

/**
 * One native client: `{"action":"subscribe"|"unsubscribe"|"publish"}` in, raw payloads or
 * envelopes out. Errors are JSON frames with a stable code; the connection stays up.
 */
export class NativeSession implements Connection, LinkHandler {
  readonly wire: WireEncoder;
  readonly protocol = 'native';
  readonly channels = new Set<string>();
  user: SignedInUser | undefined;
  metadata: unknown = undefined;
  /** Only with hooks set: without them, every frame is handled synchronously as it comes. */
  private readonly hooks: ConnectionHooks | undefined;
  /** What the hub sent while connectionOpened had not answered; undefined once it has (or with no hooks). */
  private held: HeldFrames | undefined;
  /** The close frame this side sent, reported to connectionClosed rather than the client's echo. */
  private sentClose: { code: number; reason: string } | undefined;
  private closed = false;
  private hasSubscribed = false;
  private readonly idleTimer: NodeJS.Timeout | undefined;
  private readonly messages: TokenBucket;

  constructor(
    readonly id: string,
    public app: App,
    private readonly link: ClientLink,
    private readonly hub: Hub,
    private readonly counters: Counters,
    private readonly identity: NativeIdentity,
    private readonly options: NativeSessionOptions,
    request?: OpenRequest,
  ) {
    if (options.hooks && request) this.hooks = new ConnectionHooks(this, request.address, options.hooks);
    this.wire = NATIVE_WIRES[options.format];
    this.messages = new TokenBucket(app.clientMessagesPerSecond);
    link.setQueuePolicy(queuePolicyFor(app));
    // The callbacks are made only for apps that set an idle timeout (off by default).
    this.idleTimer =
      app.idleTimeoutSeconds === 0
        ? undefined
        : watchIdle(app, () => this.hasSubscribed, () => {
            counters.increment(app.id, CounterName.IdleConnectionsClosed);
            this.close('idle');
          });
  }

  get lastActivityAt(): number {
    return this.link.lastActivityAt;
  }

  /**
   * After the hub accepted the connection: runs connectionOpened (the client's frames wait for
   * it, and so do the hub's), then sends what the hub sent meanwhile, binds the user and joins
   * the channel named in the URL. A refused client gets nothing but its close.
   */
  begin(url: RequestTarget, request?: OpenRequest): void {
    if (!this.hooks || !request) return this.start(url);
    this.held = new HeldFrames(queuePolicyFor(this.app));
    const settle = (outcome: OpenOutcome): void => {
      const held = this.held;
      this.held = undefined;
      if (this.closed) return;
      if (outcome.kind === 'accept') {
        held?.releaseTo(this.link);
        return this.start(url);
      }
      this.closeWith(outcome.kind === 'reject' ? NativeCloseCode.RefusedByApplication : NativeCloseCode.ConnectionHookFailed, outcome.reason);
    };
    const outcome = this.hooks.opened(request.headers, request.url, hookUser(this.identity.user));
    if (outcome instanceof Promise) this.hooks.order.run(() => outcome.then(settle));
    else settle(outcome);
  }

  private start(url: RequestTarget): void {
    const user = this.identity.user;
    if (user) {
      this.hub.signIn(this, { id: user.id, session: user.session, info: user.info, watchlist: [] });
      if (this.user) this.hooks?.notify('signedIn', { user: hookUser(user) }, this.hookFailed);
    }
    const room = url.searchParams.get('channel') ?? url.searchParams.get('room');
    if (room !== null) this.subscribe(room, url.searchParams.get('room_password') ?? undefined);
  }

  write(bytes: Buffer): boolean {
    return this.held ? this.held.hold(bytes, this) : this.link.write(bytes);
  }

  notify(_notice: ConnectionNotice): void {
    // Watchlists are a Pusher feature; native connections never register one.
  }

  close(reason: CloseReason): void {
    this.closeWith(NativeClose[reason], closeReasonText[reason]);
  }

  private closeWith(code: number, text: string): void {
    if (this.closed) return;
    this.closed = true;
    this.sentClose = { code, reason: text };
    this.held = undefined;
    this.hooks?.order.stop();
    this.link.close(code, text);
    this.hub.removeConnection(this, code);
  }

  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    // Counted as frames arrive, not as they are handled, so frames held behind a hook are not refused in a burst.
    if (!this.messages.take()) {
      this.counters.increment(this.app.id, CounterName.ClientMessagesRateLimited);
      return this.error('RATE_LIMITED', `More than ${this.app.clientMessagesPerSecond} messages per second; this one was dropped`);
    }
    if (!this.hooks) return void this.handle(data, isBinary);
    if (!this.hooks.order.run(() => this.handle(data, isBinary))) {
      this.error('RATE_LIMITED', `More than ${MAX_FRAMES_WAITING_ON_HOOKS} messages are waiting for the application's hooks; this one was dropped`);
    }
  }

  /** A promise only when a hook answers asynchronously; the frames after this one wait for it. */
  private handle(data: Buffer, isBinary: boolean): void | Promise<void> {
    if (this.closed) return;
    if (isBinary) return this.error('INVALID_MESSAGE', 'Send actions as JSON text frames');
    const decoded = decodeNative(data.toString('utf8'));
    if (!decoded.ok) {
      return this.error(decoded.code, decoded.code === 'INVALID_JSON' ? 'Message is not valid JSON' : 'Expected a JSON object with a string "action"');
    }
    const m = decoded.message;
    switch (m.action) {
      case 'subscribe':
        return this.subscribe(m.channel, typeof m.password === 'string' ? m.password : undefined, m.since);
      case 'unsubscribe':
        if (typeof m.channel !== 'string') return this.error('INVALID_CHANNEL', 'unsubscribe needs a channel');
        return this.unsubscribe(m.channel);
      case 'publish':
        return this.publish(m.channel, m.event, m.data);
      case 'ping':
        this.link.sendText('{"type":"pong"}');
        return;
      default:
        return this.error('UNKNOWN_ACTION', `Unknown action: ${m.action.slice(0, 64)}`);
    }
  }

  onIdle(): void {
    // The transport's WebSocket ping is the native keep-alive; nothing to add at this level.
  }

  onPongTimeout(): void {
    this.close('pong_timeout');
  }

  onOverflow(): void {
    if (this.closed) return; // one close, counted once
    this.counters.increment(this.app.id, CounterName.SlowConsumerCloses);
    this.close('slow_consumer');
  }

  onDropped(): void {
    this.counters.increment(this.app.id, CounterName.MessagesDropped);
  }

  onClose(code = 1006, reason = ''): void {
    clearTimeout(this.idleTimer);
    this.closed = true;
    this.hub.removeConnection(this);
    if (!this.hooks) return;
    this.hooks.order.stop();
    this.hooks.notify('connectionClosed', this.sentClose ?? { code, reason }, () => undefined);
  }

  private error(code: NativeErrorCode, message: string, channel?: string): void {
    this.link.sendText(encodeNativeError(code, message, channel, this.options.format));
  }

  private hookFailedReport: ((text: string) => void) | undefined;

  /** What a hook that failed reports to the client; made once, and only for connections with hooks. */
  private get hookFailed(): (text: string) => void {
    return (this.hookFailedReport ??= (text: string): void => {
      if (!this.closed) this.error('HOOK_FAILED', text);
    });
  }

  private unsubscribe(channel: string): void {
    const leaving = this.channels.has(channel);
    this.hub.unsubscribe(this, channel);
    if (this.options.acks) this.link.sendText(encodeNativeAck('unsubscribed', channel));
    if (leaving) this.hooks?.notify('unsubscribed', { channel }, this.hookFailed);
  }

  private subscribe(channel: unknown, password: string | undefined, since?: unknown): void {
    if (!isValidNativeChannelName(channel, this.app.maxChannelNameLength)) {
      return this.error('INVALID_CHANNEL', `A channel name is 1-${this.app.maxChannelNameLength} characters, no control characters, not starting with #`);
    }
    if (!channelPasswordGiven(this.app, channel, password)) return this.error('WRONG_PASSWORD', 'This channel needs its password', channel);
    const kind = channelKind(channel);
    if (kind.isPrivate && (!this.user || !channelAllowed(this.identity.channels, channel))) {
      return this.error('FORBIDDEN_CHANNEL', 'Private and presence channels need a connection allowed to join them', channel);
    }
    const member = kind.isPresence && this.user ? { userId: this.user.id, info: this.user.info } : undefined;
    const joining = !this.channels.has(channel);
    const outcome = this.hub.subscribe(this, channel, member);
    if (!outcome.ok) {
      switch (outcome.error) {
        case 'presence_full':
          return this.error('PRESENCE_FULL', `The presence channel is full (${this.app.maxPresenceMembers} members)`, channel);
        case 'channel_full':
          return this.error('CHANNEL_FULL', `The channel is full (${this.app.maxChannelSubscribers} subscribers)`, channel);
        case 'too_many_channels':
          return this.error('TOO_MANY_CHANNELS', `A connection may subscribe to at most ${this.app.maxChannelsPerConnection} channels`, channel);
        case 'forbidden':
          return this.error('FORBIDDEN_CHANNEL', 'Forbidden', channel);
        case 'closed':
          return; // nobody left to tell
      }
    }
    this.hasSubscribed = true;
    clearTimeout(this.idleTimer);
    const confirm = (): void => {
      if (since !== undefined && since !== null && parsePosition(since) === undefined) {
        this.error('INVALID_MESSAGE', '`since` is {"epoch": string, "offset": integer >= 0}', channel);
      }
      // On a history channel the ack says where the channel is (and, with `since`, whether the
      // replay that follows it is complete); then the replay, then live messages.
      if (this.hub.historyLimits(this.app, channel) !== null) {
        this.hub
          .resume(this, channel, parsePosition(since), (outcome) => {
            if (this.options.acks || since !== undefined) this.link.sendText(encodeNativeAck('subscribed', channel, outcome));
          })
          .catch(() => this.error('HISTORY_UNAVAILABLE', 'History could not be read; subscribed without a replay', channel));
        return;
      }
      if (this.options.acks) this.link.sendText(encodeNativeAck('subscribed', channel));
      if (joining) this.hooks?.notify('subscribed', { channel }, this.hookFailed);
    };
    if (!outcome.ready) return confirm();
    // Interest routing: the ack (and a replay) wait until this node receives the channel.
    void outcome.ready.then(() => {
      if (this.channels.has(channel)) confirm();
    });
  }

  private publish(channel: unknown, event: unknown, data: unknown): void | Promise<void> {
    if (!this.app.clientPublish) return this.error('PUBLISH_DISABLED', 'Client publishing is not enabled for this app');
    if (typeof channel !== 'string' || !this.channels.has(channel)) {
      return this.error('NOT_SUBSCRIBED', 'Publish to a channel this connection is subscribed to');
    }
    const problem = event === undefined ? undefined : nativeEventNameProblem(event, this.app);
    if (problem !== undefined) return this.error('INVALID_EVENT', problem, channel);
    if (data === undefined) return this.error('INVALID_MESSAGE', 'publish needs data', channel);
    let text: string;
    try {
      text = typeof data === 'string' ? data : JSON.stringify(data);
    } catch {
      // JSON.parse takes any depth, JSON.stringify recurses: deep nesting would throw out of the socket handler.
      return this.error('INVALID_MESSAGE', 'data is nested too deeply', channel);
    }
    if (Buffer.byteLength(text) > this.app.maxEventDataBytes) {
      return this.error('MESSAGE_TOO_LARGE', `data is larger than ${this.app.maxEventDataBytes} bytes`, channel);
    }
    const name = typeof event === 'string' ? event : 'message';
    if (!this.hooks?.has('publish')) return this.deliver(channel, name, text, typeof data !== 'string');
    const rules = { alwaysJson: false, eventProblem: (e: string) => nativeEventNameProblem(e, this.app) };
    const outcome = this.hooks.inbound('publish', { channel, event: name, data }, rules);
    const settle = (o: InboundOutcome): void => {
      if (this.closed) return;
      switch (o.kind) {
        case 'deliver':
          return this.deliver(channel, name, text, typeof data !== 'string');
        case 'replace':
          return this.deliver(channel, o.event ?? name, o.data?.text ?? text, o.data ? o.data.isJson : typeof data !== 'string');
        case 'drop':
          return;
        case 'reject':
          return this.error('MESSAGE_REJECTED', o.message, channel);
        case 'failed':
          return this.error('HOOK_FAILED', o.message, channel);
      }
    };
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }

  private deliver(channel: string, event: string, text: string, dataIsJson: boolean): void {
    this.hub.publish(this.app, { kind: 'event', channel, event, data: text, dataIsJson, fromClient: true, exceptSocketId: this.id });
    this.hub.report(this.app.id, { name: 'client_event', channel, event, data: text, socketId: this.id, userId: this.user?.id });
  }
}
