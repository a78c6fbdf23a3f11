import type { App } from '../../core/app.js';
import { channelKind, isValidChannelName } from '../../core/channels.js';
import { closeReasonText, type CloseReason, type Connection, type ConnectionNotice, type SignedInUser } from '../../core/connection.js';
import type { Hub, PresenceMember } from '../../core/hub.js';
import type { ChannelMessage } from '../../core/message.js';
import { TokenBucket } from '../../core/token-bucket.js';
import type { Logger } from '../../log.js';
import type { ClientLink, LinkHandler } from '../../transport/seam.js';
import { CounterName, type Counters } from '../../core/counters.js';
import { queuePolicyFor, watchIdle, watchSignIn } from '../session-limits.js';
import { jsonText } from '../../util/json.js';
import { presenceMember, validSignature } from './channel-auth.js';
import { subscribeWithRecovery } from './recovery.js';
import { ConnectionHooks, MAX_FRAMES_WAITING_ON_HOOKS, type HookSetup, type InboundOutcome, type OpenOutcome, type OpenRequest } from '../../embedding/connection-hooks.js';
import { HeldFrames } from '../../embedding/held-frames.js';
import { PusherCode, PusherSubscriptionError, closeCodeFor } from './close-codes.js';
import {
  decodeClientFrame,
  encodeCacheMiss,
  encodeChannelMessage,
  encodeConnectionEstablished,
  encodeError,
  encodeEvent,
  encodeSubscriptionError,
  encodeSubscriptionSucceeded,
  encodeWatchlist,
  pusherWire,
  type ClientFrame,
} from './codec.js';

export interface SessionContext {
  readonly hub: Hub;
  /** Refusals and losses per app. */
  readonly counters: Counters;
  readonly log: Logger;
  /** The embedding application's hooks, when it set any. */
  readonly hooks?: HookSetup | undefined;
}

/**
 * One Pusher client: decodes its frames, checks them at the edge, and turns them into hub
 * calls. The hub sees it as a Connection.
 */
export class PusherSession implements Connection, LinkHandler {
  readonly wire = pusherWire;
  readonly protocol = 'pusher';
  readonly channels = new Set<string>();
  user: SignedInUser | undefined;
  metadata: unknown = undefined;
  /** Made at the first client event: most connections never send one. */
  private clientEvents: TokenBucket | undefined;
  /** Only with hooks set: without them, every frame is handled synchronously as it comes. */
  private readonly hooks: ConnectionHooks | undefined;
  /** What the hub sent while connectionOpened had not answered; undefined once it has (or with no hooks). */
  private held: HeldFrames | undefined;
  /** The close frame this side sent, reported to connectionClosed rather than the client's echo. */
  private sentClose: { code: number; reason: string } | undefined;
  private closed = false;
  private hasSubscribed = false;
  private readonly idleTimer: NodeJS.Timeout | undefined;
  private readonly signInTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    public app: App,
    private readonly link: ClientLink,
    private readonly ctx: SessionContext,
    request?: OpenRequest,
  ) {
    if (ctx.hooks && request) this.hooks = new ConnectionHooks(this, request.address, ctx.hooks);
    link.setQueuePolicy(queuePolicyFor(app));
    // The callbacks are made only for apps that set these timeouts (both are off by default).
    this.idleTimer =
      app.idleTimeoutSeconds === 0
        ? undefined
        : watchIdle(app, () => this.hasSubscribed, () => {
            ctx.counters.increment(app.id, CounterName.IdleConnectionsClosed);
            this.close('idle');
          });
    this.signInTimer =
      app.signIn !== 'required'
        ? undefined
        : watchSignIn(app, () => {
            this.closeWith(PusherCode.Unauthorized, `Not signed in within ${app.signInTimeoutMs} ms: this app requires pusher:signin`);
          });
  }

  /**
   * After the hub accepted the connection: runs connectionOpened (the client's frames wait for
   * it, and so do the hub's), then tells the client its socket id, then what the hub sent meanwhile.
   */
  begin(request: OpenRequest | undefined, activityTimeoutSeconds: number): void {
    const established = (): void => {
      this.link.sendText(encodeConnectionEstablished(this.id, activityTimeoutSeconds));
    };
    if (!this.hooks || !request) return established();
    this.held = new HeldFrames(queuePolicyFor(this.app));
    const settle = (outcome: OpenOutcome): void => {
      const held = this.held;
      this.held = undefined;
      if (this.closed) return;
      if (outcome.kind === 'accept') {
        established();
        return held?.releaseTo(this.link);
      }
      this.closeWith(outcome.kind === 'reject' ? PusherCode.RefusedByApplication : PusherCode.ConnectionHookFailed, outcome.reason);
    };
    const outcome = this.hooks.opened(request.headers, request.url, undefined);
    if (outcome instanceof Promise) this.hooks.order.run(() => outcome.then(settle));
    else settle(outcome);
  }

  // --- Connection (called by the hub) ---

  get lastActivityAt(): number {
    return this.link.lastActivityAt;
  }

  write(bytes: Buffer): boolean {
    return this.held ? this.held.hold(bytes, this) : this.link.write(bytes);
  }

  notify(notice: ConnectionNotice): void {
    if (notice.kind === 'watchlist') this.link.sendText(encodeWatchlist(notice.online, notice.offline));
  }

  close(reason: CloseReason): void {
    this.closeWith(closeCodeFor[reason], closeReasonText[reason]);
  }

  closeWith(code: number, message: string): void {
    if (this.closed) return;
    this.closed = true;
    this.sentClose = { code, reason: message };
    this.held = undefined;
    this.hooks?.order.stop();
    // Pusher clients before protocol 6 read the reason from pusher:error; newer ones from the close code.
    this.link.sendText(encodeError(code, message));
    this.link.close(code, message);
    // The hub forgets us now, not when the close handshake ends, so we stop receiving at once.
    this.ctx.hub.removeConnection(this, code);
  }

  // --- LinkHandler (called by the transport) ---

  onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    if (!this.hooks) return void this.handle(data, isBinary);
    if (!this.hooks.order.run(() => this.handle(data, isBinary))) {
      this.error(PusherCode.ClientEventRateLimit, `More than ${MAX_FRAMES_WAITING_ON_HOOKS} messages are waiting for the application's hooks; this one was dropped`);
    }
  }

  /** A promise only when a hook answers asynchronously; the frames after this one wait for it. */
  private handle(data: Buffer, isBinary: boolean): void | Promise<void> {
    if (this.closed) return;
    if (isBinary) return this.error(PusherCode.InvalidMessage, 'Binary frames are not supported');
    const frame = decodeClientFrame(data.toString('utf8'));
    if (!frame) return this.error(PusherCode.InvalidMessage, 'Invalid message: expected a JSON object with a string "event"');
    switch (frame.event) {
      case 'pusher:ping':
        this.link.sendText('{"event":"pusher:pong","data":"{}"}');
        return;
      case 'pusher:pong':
        return;
      case 'pusher:subscribe':
        return this.subscribe(frame);
      case 'pusher:unsubscribe':
        return this.unsubscribe(frame);
      case 'pusher:signin':
        return this.signIn(frame);
      default:
        if (frame.event.startsWith('client-')) return this.clientEvent(frame);
        return this.error(PusherCode.InvalidMessage, `Unsupported event: ${frame.event.slice(0, 64)}`);
    }
  }

  onIdle(): void {
    this.link.sendText('{"event":"pusher:ping","data":"{}"}');
  }

  onPongTimeout(): void {
    this.close('pong_timeout');
  }

  onOverflow(): void {
    // closeWith() writes a pusher:error first, which can overflow again: count the close once.
    if (this.closed) return;
    this.ctx.counters.increment(this.app.id, CounterName.SlowConsumerCloses);
    this.close('slow_consumer');
  }

  onDropped(): void {
    this.ctx.counters.increment(this.app.id, CounterName.MessagesDropped);
  }

  onClose(code = 1006, reason = ''): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.signInTimer);
    this.closed = true;
    this.ctx.hub.removeConnection(this);
    if (!this.hooks) return;
    this.hooks.order.stop();
    this.hooks.notify('connectionClosed', this.sentClose ?? { code, reason }, () => undefined);
  }

  // --- client frames ---

  private error(code: number, message: string): void {
    this.link.sendText(encodeError(code, message));
  }

  private hookFailedReport: ((text: string) => void) | undefined;

  /** What a hook that failed reports to the client; made once, and only for connections with hooks. */
  private get hookFailed(): (text: string) => void {
    return (this.hookFailedReport ??= (text: string): void => {
      if (!this.closed) this.error(PusherCode.HookFailed, text);
    });
  }

  private subscribe(frame: ClientFrame): void {
    const data = asObject(frame.data);
    const channel = data?.channel;
    if (!isValidChannelName(channel, this.app.maxChannelNameLength)) {
      return this.error(PusherCode.InvalidMessage, 'pusher:subscribe needs data.channel: a valid channel name');
    }
    const refuse = (type: PusherSubscriptionError, error: string, status: number): void => {
      this.link.sendText(encodeSubscriptionError(channel, type, error, status));
    };
    const kind = channelKind(channel);
    // Pusher clients cannot send a channel password: such channels are for native clients only.
    if (Object.hasOwn(this.app.channelPasswords, channel)) return refuse(PusherSubscriptionError.AuthError, 'This channel needs a password (native protocol only)', 401);
    if (kind.serverToUser !== undefined) {
      if (this.user?.id !== kind.serverToUser) return refuse(PusherSubscriptionError.AuthError, 'Only the signed-in user may subscribe to its own channel', 401);
    } else if (kind.isPrivate) {
      const channelData = kind.isPresence ? data?.channel_data : undefined;
      if (kind.isPresence && typeof channelData !== 'string') return refuse(PusherSubscriptionError.AuthError, 'Presence channels need channel_data', 401);
      const toSign = typeof channelData !== 'string' ? `${this.id}:${channel}` : `${this.id}:${channel}:${channelData}`;
      if (!validSignature(this.app, data?.auth, toSign)) return refuse(PusherSubscriptionError.AuthError, 'Invalid signature', 401);
    }

    let member: PresenceMember | undefined;
    if (kind.isPresence) {
      const parsed = presenceMember(this.app, this.user, data?.channel_data as string);
      if (typeof parsed === 'string') return refuse(PusherSubscriptionError.InvalidChannelData, parsed, 400);
      member = parsed;
    }
    const joining = !this.channels.has(channel);
    const outcome = this.ctx.hub.subscribe(this, channel, member);
    if (!outcome.ok) {
      switch (outcome.error) {
        case 'presence_full':
          return refuse(PusherSubscriptionError.LimitReached, `The presence channel is full (${this.app.maxPresenceMembers} members)`, 403);
        case 'channel_full':
          return refuse(PusherSubscriptionError.LimitReached, `The channel is full (${this.app.maxChannelSubscribers} subscribers)`, 403);
        case 'too_many_channels':
          return refuse(PusherSubscriptionError.LimitReached, `A connection may subscribe to at most ${this.app.maxChannelsPerConnection} channels`, 403);
        case 'forbidden':
          return refuse(PusherSubscriptionError.AuthError, 'Forbidden', 403);
        case 'closed':
          return; // nobody left to tell
      }
    }
    this.hasSubscribed = true;
    clearTimeout(this.idleTimer);
    const succeed = (recoveryFields = ''): void => {
      this.link.sendText(encodeSubscriptionSucceeded(channel, outcome.members, recoveryFields));
      if (outcome.cached !== undefined) this.link.sendText(outcome.cached ? encodeChannelMessage(outcome.cached) : encodeCacheMiss(channel));
    };
    const confirm = (): void => {
      // A history channel answers once its history was read: position, replay (with `since`), then live.
      if (this.ctx.hub.historyLimits(this.app, channel) === null) succeed();
      else subscribeWithRecovery(this.ctx.hub, this, channel, data?.since, succeed, (message) => this.error(PusherCode.InvalidMessage, message));
      if (joining) this.hooks?.notify('subscribed', { channel }, this.hookFailed);
    };
    if (!outcome.ready) return confirm();
    // Interest routing: this node is joining the channel's shard; once it has, nothing published
    // after the client hears "subscribed" can miss it. (Unless it left or closed meanwhile.)
    outcome.ready
      .then(() => {
        if (this.channels.has(channel)) confirm();
      })
      .catch((err: unknown) => this.ctx.log.warn({ err }, 'subscription confirmation failed'));
  }

  private unsubscribe(frame: ClientFrame): void {
    const channel = asObject(frame.data)?.channel;
    if (typeof channel !== 'string') return this.error(PusherCode.InvalidMessage, 'pusher:unsubscribe needs data.channel');
    const leaving = this.channels.has(channel);
    this.ctx.hub.unsubscribe(this, channel);
    if (leaving) this.hooks?.notify('unsubscribed', { channel }, this.hookFailed);
  }

  private signIn(frame: ClientFrame): void {
    if (this.app.signIn === 'disabled') return this.error(PusherCode.InvalidMessage, 'User sign-in is not enabled for this app');
    const data = asObject(frame.data);
    const userData = data?.user_data;
    if (typeof userData !== 'string' || !validSignature(this.app, data?.auth, `${this.id}::user::${userData}`)) {
      return this.closeWith(PusherCode.Unauthorized, 'Invalid sign-in signature');
    }
    let parsed: Record<string, unknown> | undefined;
    try {
      parsed = asObject(JSON.parse(userData));
    } catch {
      parsed = undefined;
    }
    const id = parsed?.id;
    if (typeof id !== 'string' || id === '' || id.length > this.app.maxUserIdLength) {
      return this.closeWith(PusherCode.Unauthorized, 'user_data.id must be a non-empty string');
    }
    if (this.user && this.user.id !== id) return this.closeWith(PusherCode.Unauthorized, 'Connection is already signed in as another user');
    // Stored and later serialised for presence members and the cluster: it must serialise.
    if (parsed?.user_info !== undefined && jsonText(parsed.user_info) === undefined) {
      return this.closeWith(PusherCode.Unauthorized, 'user_data.user_info is nested too deeply');
    }
    if (this.user) {
      this.link.sendText(encodeEvent('pusher:signin_success', undefined, { user_data: userData }));
      return;
    }
    let watchlist: string[] = [];
    if (Array.isArray(parsed?.watchlist)) {
      watchlist = [...new Set(parsed.watchlist.filter((w): w is string => typeof w === 'string'))];
      if (watchlist.length > this.app.maxWatchlistSize) {
        watchlist = watchlist.slice(0, this.app.maxWatchlistSize);
        this.error(PusherCode.WatchlistLimit, `Watchlist limited to its first ${this.app.maxWatchlistSize} user ids`);
      }
    }
    clearTimeout(this.signInTimer);
    // Announce success before the watchlist events that signIn() triggers.
    this.link.sendText(encodeEvent('pusher:signin_success', undefined, { user_data: userData }));
    // That frame (or the watchlist error) may not have fitted the send queue and closed the
    // connection: the hub then turns the sign-in away, as it does for any connection it no longer holds.
    this.ctx.hub.signIn(this, { id, info: parsed?.user_info, watchlist });
    if (this.hooks && this.user) this.hooks.notify('signedIn', { user: { id, info: parsed?.user_info } }, this.hookFailed);
  }

  private clientEvent(frame: ClientFrame): void | Promise<void> {
    const channel = frame.channel;
    if (!this.app.enableClientMessages) return this.error(PusherCode.InvalidMessage, 'Client events are not enabled for this app');
    if (channel === undefined || !this.channels.has(channel)) {
      return this.error(PusherCode.InvalidMessage, 'Client events need a channel this connection is subscribed to');
    }
    const kind = channelKind(channel);
    if (!kind.isPrivate || kind.isEncrypted) {
      return this.error(PusherCode.InvalidMessage, 'Client events are only allowed on private and presence channels');
    }
    if (frame.event.length > this.app.maxEventNameLength) return this.error(PusherCode.InvalidMessage, 'Event name is too long');
    if (!(this.clientEvents ??= new TokenBucket(this.app.clientEventsPerSecond)).take()) {
      this.ctx.counters.increment(this.app.id, CounterName.ClientMessagesRateLimited);
      return this.error(PusherCode.ClientEventRateLimit, `Client event rejected: more than ${this.app.clientEventsPerSecond} per second`);
    }
    let data: string;
    try {
      data = JSON.stringify(frame.data ?? null);
    } catch {
      // JSON.parse takes any depth, JSON.stringify recurses: deep nesting would throw out of the socket handler.
      return this.error(PusherCode.InvalidMessage, 'Client event data is nested too deeply');
    }
    if (Buffer.byteLength(data) > this.app.maxEventDataBytes) {
      return this.error(PusherCode.InvalidMessage, `Client event data is larger than ${this.app.maxEventDataBytes} bytes`);
    }
    const userId = kind.isPresence ? this.ctx.hub.memberUserId(this, channel) : undefined;
    if (!this.hooks?.has('clientEvent')) return this.publishClientEvent(channel, frame.event, data, userId);
    const rules = { alwaysJson: true, eventProblem: (event: string) => clientEventNameProblem(event, this.app) };
    const outcome = this.hooks.inbound('clientEvent', { channel, event: frame.event, data: frame.data ?? null }, rules);
    const settle = (o: InboundOutcome): void => {
      if (this.closed) return;
      switch (o.kind) {
        case 'deliver':
          return this.publishClientEvent(channel, frame.event, data, userId);
        case 'replace':
          return this.publishClientEvent(channel, o.event ?? frame.event, o.data?.text ?? data, userId);
        case 'drop':
          return;
        case 'reject':
          return this.error(PusherCode.MessageRejected, o.message);
        case 'failed':
          return this.error(PusherCode.HookFailed, o.message);
      }
    };
    return outcome instanceof Promise ? outcome.then(settle) : settle(outcome);
  }

  private publishClientEvent(channel: string, event: string, data: string, userId: string | undefined): void {
    const message: ChannelMessage = {
      kind: 'event',
      channel,
      event,
      data,
      dataIsJson: true,
      fromClient: true,
      exceptSocketId: this.id,
      ...(userId === undefined ? {} : { userId }),
    };
    this.ctx.hub.publish(this.app, message);
    this.ctx.hub.report(this.app.id, { name: 'client_event', channel, event, data, socketId: this.id, userId });
  }
}

/**
 * Why a client event may not carry this name (checked again on a name the clientEvent hook gives
 * it, as the edge checks the client's); undefined when it may.
 */
export function clientEventNameProblem(event: string, app: App): string | undefined {
  if (!event.startsWith('client-')) return 'client event names start with client-';
  if (event.length > app.maxEventNameLength) return `event names are at most ${app.maxEventNameLength} characters`;
  return undefined;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
