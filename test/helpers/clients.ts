import Pusher from 'pusher';
import * as pusherJsModule from 'pusher-js';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { APP } from './server.js';

// pusher-js is CommonJS with ESM-style typings: the class is the namespace's default at run time.
type PusherJsClass = (typeof pusherJsModule)['default']['default'];
export type PusherJs = InstanceType<PusherJsClass>;
export const PusherJs = (pusherJsModule as unknown as { default: PusherJsClass }).default;

export type PresenceUser = { user_id: string; user_info?: Record<string, unknown> };

/** The official Node server SDK pointed at `server`. */
export function serverSdk(server: Switchboard, app: { id: string; key: string; secret: string } = APP, extra: Partial<Pusher.Options> = {}): Pusher {
  return new Pusher({ appId: app.id, key: app.key, secret: app.secret, host: '127.0.0.1', port: String(server.port), useTLS: false, ...extra });
}

export interface ClientOptions {
  key?: string;
  /** Presence identity used when authorizing presence channels. */
  presence?: PresenceUser;
  /** user_data for pusher:signin (an `id` is required). */
  user?: Record<string, unknown>;
  sdk?: Pusher;
}

/** pusher-js (and Echo) settings that point a client at `server` over plain ws on loopback. */
export function loopbackOptions(server: { port: number }) {
  return { cluster: 'local', wsHost: '127.0.0.1', wsPort: server.port, forceTLS: false, enabledTransports: ['ws' as const], disableStats: true };
}

/**
 * A pusher-js client whose channel and user authorization are signed in-process by the
 * official server SDK, the way a backend's auth endpoint would.
 */
export function pusherClient(server: Switchboard, opts: ClientOptions = {}): PusherJs {
  const sdk = opts.sdk ?? serverSdk(server);
  return new PusherJs(opts.key ?? APP.key, {
    ...loopbackOptions(server),
    channelAuthorization: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: (params, callback) => {
        const presence = params.channelName.startsWith('presence-') ? (opts.presence ?? { user_id: 'anon' }) : undefined;
        callback(null, sdk.authorizeChannel(params.socketId, params.channelName, presence));
      },
    },
    userAuthentication: {
      endpoint: '/unused',
      transport: 'ajax',
      customHandler: (params, callback) => {
        callback(null, sdk.authenticateUser(params.socketId, (opts.user ?? { id: 'anon' }) as Pusher.UserChannelData));
      },
    },
  });
}

/** `promise`, or a rejection naming `what` after `ms`: a pusher-js event that never comes fails the test instead of hanging it. */
export function within<T>(promise: Promise<T>, what: string, ms = 3000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves once the client is connected; returns its socket id. */
export function connected(client: PusherJs): Promise<string> {
  return new Promise((resolve, reject) => {
    if (client.connection.state === 'connected') return resolve(client.connection.socket_id);
    client.connection.bind('connected', () => resolve(client.connection.socket_id));
    client.connection.bind('failed', () => reject(new Error('connection failed')));
  });
}

/** Subscribes and waits for pusher:subscription_succeeded; resolves with its data. */
export function subscribed(client: PusherJs, channel: string): Promise<unknown> {
  const ch = client.subscribe(channel);
  return new Promise((resolve, reject) => {
    ch.bind('pusher:subscription_succeeded', resolve);
    ch.bind('pusher:subscription_error', (err: unknown) => reject(new Error(`subscription_error: ${JSON.stringify(err)}`)));
  });
}

/** A raw WebSocket for protocol edges: frames as sent, nothing interpreted. */
export class RawClient {
  readonly messages: Array<{ event: string; channel?: string; data?: unknown; user_id?: string }> = [];
  private waiters: Array<() => void> = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly closed: Promise<number>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)) as RawClient['messages'][number]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = String(reason);
        for (const w of this.waiters.splice(0)) w();
        resolve(code);
      });
    });
  }

  static async connect(server: Switchboard, path = `/app/${APP.key}?protocol=7&client=raw&version=1.0`): Promise<RawClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
    const client = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Waits for the first message (from the start of the connection) matching `pred`. */
  async next(pred: (m: RawClient['messages'][number]) => boolean, timeoutMs = 3000): Promise<RawClient['messages'][number]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode}) before a matching message`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching message in ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  event(name: string, channel?: string): Promise<RawClient['messages'][number]> {
    return this.next((m) => m.event === name && (channel === undefined || m.channel === channel));
  }

  /** The socket id from pusher:connection_established. */
  async socketId(): Promise<string> {
    const m = await this.event('pusher:connection_established');
    return (JSON.parse(m.data as string) as { socket_id: string }).socket_id;
  }

  close(): void {
    this.ws.close();
  }
}
