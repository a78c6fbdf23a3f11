/**
 * Switchboard's native protocol (`/ws`, envelope format) for browsers and Node. The client
 * reconnects by itself with exponential backoff and jitter, subscribes again to its channels,
 * and on channels that keep history resumes from the last position it saw: the server replays
 * what was missed, in order, before live messages, or says it cannot (`recovered: false`).
 */

/** A message's place in its channel's history. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

export interface Message {
  readonly channel: string;
  readonly event: string;
  /** As published: a string, or the JSON value. */
  readonly data: unknown;
  /** On history channels. */
  readonly position?: Position;
  /** A presence channel's client event: who sent it. */
  readonly userId?: string;
  /** A binary payload, given in `data` as base64 text. */
  readonly encoding?: 'base64';
}

/** What the server answered a (re)subscribe to a history channel. */
export interface Recovery {
  /** True: the missed messages follow. False: they are lost (or this is the first subscribe): reload the channel's state. */
  readonly recovered: boolean;
  /** Whether the subscribe named a position to resume from. */
  readonly resumed: boolean;
  /** The channel's newest position when the server read its history. */
  readonly position: Position;
}

export interface ServerError {
  readonly code: string;
  readonly message: string;
  readonly channel?: string;
}

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SubscribeOptions {
  readonly onMessage: (message: Message) => void;
  /** Each (re)subscribe to a history channel, before its replay. */
  readonly onRecovery?: (recovery: Recovery) => void;
  /** For channels in the app's `channelPasswords`. */
  readonly password?: string;
  /** Resume from here on the first subscribe (a position the application stored). */
  readonly since?: Position;
}

/**
 * The platform WebSocket as far as the client uses it: the browser's, Node 22+'s global one, or
 * the `ws` package's. Handlers take `never` so that each of those classes fits.
 */
export interface WebSocketLike {
  onopen: ((event: never) => void) | null;
  onmessage: ((event: never) => void) | null;
  onclose: ((event: never) => void) | null;
  onerror: ((event: never) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketClass = new (url: string) => WebSocketLike;

export interface ClientOptions {
  /**
   * `ws(s)://host:port/ws` with the credentials in its query (`token=`, `jwt=`, `claim=`). A
   * list is tried in turn, one per attempt (other nodes of a cluster); a function is called
   * before each attempt (a fresh token each time).
   */
  readonly url: string | readonly string[] | (() => string | Promise<string>);
  /** Defaults to the global WebSocket; on Node without one (Node 20), the `ws` package. */
  readonly WebSocket?: WebSocketClass;
  /** First reconnect delay (default 500 ms); doubles per failed attempt up to `maxDelayMs` (default 15 s), each one jittered down by up to half. */
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
  /** A ping after this much silence (default 25 s); no answer within `pongTimeoutMs` (10 s) and the connection is dropped and made again. */
  readonly pingIntervalMs?: number;
  readonly pongTimeoutMs?: number;
  readonly onStateChange?: (state: ConnectionState) => void;
  readonly onError?: (error: ServerError) => void;
}

/** Close codes after which reconnecting would be refused again: app disabled, disconnected by the backend, refused by the application. */
const FINAL_CLOSE_CODES = new Set([4003, 4009, 4010]);

interface Subscription {
  readonly options: SubscribeOptions;
  position: Position | undefined;
  /** A (re)subscribe was sent and not yet answered. */
  resumedFrom: Position | undefined;
}

export class SwitchboardClient {
  private readonly subscriptions = new Map<string, Subscription>();
  private socket: WebSocketLike | undefined;
  private isOpen = false;
  private stopped = false;
  private attempt = 0;
  private urlIndex = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFrameAt = 0;
  private current: ConnectionState = 'connecting';

  constructor(private readonly options: ClientOptions) {
    void this.connect();
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** Subscribes now or on the next connection, and again after every reconnect. */
  subscribe(channel: string, options: SubscribeOptions): void {
    // Subscribing again to a channel keeps its position unless the new options name one.
    const sub: Subscription = { options, position: options.since ?? this.subscriptions.get(channel)?.position, resumedFrom: undefined };
    this.subscriptions.set(channel, sub);
    if (this.isOpen) this.sendSubscribe(channel, sub);
  }

  unsubscribe(channel: string): void {
    if (this.subscriptions.delete(channel) && this.isOpen) this.send({ action: 'unsubscribe', channel });
  }

  /** The last position seen on a channel (to store, and pass as `since` in a later session). */
  position(channel: string): Position | undefined {
    return this.subscriptions.get(channel)?.position;
  }

  /**
   * Publishes to a subscribed channel (the app needs `clientPublish`). Returns false when not
   * connected: nothing is queued, the application decides whether to try again.
   */
  publish(channel: string, data: unknown, event?: string): boolean {
    if (!this.isOpen) return false;
    this.send(event === undefined ? { action: 'publish', channel, data } : { action: 'publish', channel, event, data });
    return true;
  }

  /** Closes for good: no reconnect. */
  close(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.pingTimer);
    this.isOpen = false;
    this.socket?.close(1000, 'client closed');
    this.socket = undefined;
    this.setState('closed');
  }

  private setState(state: ConnectionState): void {
    if (state === this.current) return;
    this.current = state;
    this.options.onStateChange?.(state);
  }

  private async connect(): Promise<void> {
    let socket: WebSocketLike;
    try {
      const [Socket, url] = await Promise.all([this.options.WebSocket ?? platformWebSocket(), this.nextUrl()]);
      if (this.stopped) return;
      socket = new Socket(withEnvelopes(url));
    } catch {
      return this.retry(); // a bad URL or a failing url() function: try again after the backoff
    }
    this.socket = socket;
    socket.onopen = (() => {
      if (socket !== this.socket) return;
      this.isOpen = true;
      this.attempt = 0;
      this.lastFrameAt = Date.now();
      this.schedulePing();
      this.setState('open');
      for (const [channel, sub] of this.subscriptions) this.sendSubscribe(channel, sub);
    });
    socket.onmessage = ((event: { readonly data: unknown }) => {
      if (socket !== this.socket) return;
      this.lastFrameAt = Date.now();
      if (typeof event.data === 'string') this.receive(event.data);
    });
    socket.onclose = ((event: { readonly code: number }) => {
      if (socket === this.socket) this.lost(event.code);
    });
    // Browsers say nothing useful here; the close that follows starts the retry.
    socket.onerror = (() => undefined);
  }

  /** The connection is gone (closed by either side, or silent too long): reconnect unless the close is final. */
  private lost(code: number): void {
    const socket = this.socket;
    this.socket = undefined;
    this.isOpen = false;
    clearTimeout(this.pingTimer);
    if (FINAL_CLOSE_CODES.has(code)) return this.close();
    try {
      socket?.close(4000, 'reconnecting'); // a no-op once closed; ends a silent one
    } catch {
      // Closing a socket that is already going away may throw in some implementations: it is gone either way.
    }
    this.retry();
  }

  private async nextUrl(): Promise<string> {
    const { url } = this.options;
    if (typeof url === 'function') return url();
    if (typeof url === 'string') return url;
    if (url.length === 0) throw new Error('options.url is an empty list');
    return url[this.urlIndex++ % url.length];
  }

  private retry(): void {
    if (this.stopped) return;
    this.setState('reconnecting');
    const min = this.options.minDelayMs ?? 500;
    const max = this.options.maxDelayMs ?? 15_000;
    const ceiling = Math.min(max, min * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    // Jitter: clients cut off together do not all come back in the same instant.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private schedulePing(): void {
    const every = this.options.pingIntervalMs ?? 25_000;
    const patience = this.options.pongTimeoutMs ?? 10_000;
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      const silent = Date.now() - this.lastFrameAt;
      if (silent >= every + patience) {
        // No answer to the last ping: the connection is dead without having said so.
        return this.lost(4000);
      }
      if (silent >= every) this.send({ action: 'ping' });
      this.schedulePing();
    }, Math.min(every, patience));
  }

  private sendSubscribe(channel: string, sub: Subscription): void {
    sub.resumedFrom = sub.position;
    const frame: Record<string, unknown> = { action: 'subscribe', channel };
    if (sub.options.password !== undefined) frame.password = sub.options.password;
    if (sub.position) frame.since = sub.position;
    this.send(frame);
  }

  private send(frame: Record<string, unknown>): void {
    if (this.socket) this.socket.send(JSON.stringify(frame));
  }

  private receive(text: string): void {
    let frame: Record<string, unknown>;
    try {
      frame = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    const channel = typeof frame.channel === 'string' ? frame.channel : undefined;
    switch (frame.type) {
      case 'subscribed':
        return this.subscribed(channel, frame);
      case 'error':
        return this.options.onError?.({ code: String(frame.code), message: String(frame.message ?? frame.error), ...(channel === undefined ? {} : { channel }) });
      case undefined:
        break;
      default:
        return; // pong, unsubscribed
    }
    const sub = channel === undefined ? undefined : this.subscriptions.get(channel);
    if (!sub || channel === undefined || typeof frame.event !== 'string') return;
    const position = asPosition(frame.position);
    if (position) {
      const last = sub.position;
      // Seen already (the server never sends one twice; this guards an application-given `since`).
      if (last && last.epoch === position.epoch && position.offset <= last.offset) return;
      sub.position = position;
    }
    sub.options.onMessage({
      channel,
      event: frame.event,
      data: frame.data,
      ...(frame.encoding === 'base64' ? { encoding: 'base64' as const } : {}),
      ...(position ? { position } : {}),
      ...(typeof frame.user_id === 'string' ? { userId: frame.user_id } : {}),
    });
  }

  private subscribed(channel: string | undefined, frame: Record<string, unknown>): void {
    const sub = channel === undefined ? undefined : this.subscriptions.get(channel);
    const position = asPosition(frame.position);
    if (!sub || !position || typeof frame.recovered !== 'boolean') return;
    const resumed = sub.resumedFrom !== undefined;
    sub.resumedFrom = undefined;
    // Recovered: the replay moves the position on. Not: go on from the channel's newest.
    if (!frame.recovered) sub.position = position;
    sub.options.onRecovery?.({ recovered: frame.recovered, resumed, position });
  }
}

/** The client reads envelopes (they carry channel, event and position): `format=envelope` is set on the URL. */
function withEnvelopes(url: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('format', 'envelope');
  return parsed.toString();
}

async function platformWebSocket(): Promise<WebSocketClass> {
  const global = (globalThis as { WebSocket?: WebSocketClass }).WebSocket;
  if (global) return global;
  // Node 20 has no global WebSocket. The name is in a variable so that bundlers for browsers
  // (which always have one) do not try to resolve the package.
  const name = 'ws';
  const mod = (await import(name)) as { WebSocket?: WebSocketClass; default?: WebSocketClass };
  const found = mod.WebSocket ?? mod.default;
  if (!found) throw new Error('No WebSocket: install the ws package, or pass options.WebSocket');
  return found;
}

function asPosition(value: unknown): Position | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, offset } = value as Record<string, unknown>;
  return typeof epoch === 'string' && typeof offset === 'number' ? { epoch, offset } : undefined;
}
