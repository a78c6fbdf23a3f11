import type { App } from './app.js';
import type { WireEncoder } from './message.js';

export type SocketId = string;

/** Why the hub asks a connection to close; each front-end maps these to its own codes. */
export type CloseReason =
  | 'terminated' // the backend asked for this user's connections to end
  | 'shutdown' // the server is draining: reconnect elsewhere now
  | 'slow_consumer' // the send queue overflowed: back off, then reconnect
  | 'pong_timeout'
  | 'over_quota'
  | 'idle' // never subscribed within the app's idle timeout
  | 'app_disabled'; // the app was disabled or deleted while the connection was open

/** What a client is told when the hub closes it for `reason`: one text, whatever the protocol's code. */
export const closeReasonText: Record<CloseReason, string> = {
  terminated: 'Disconnected by the server',
  shutdown: 'Server is restarting, reconnect',
  slow_consumer: 'Send buffer full: slow consumer disconnected',
  pong_timeout: 'Pong reply not received',
  over_quota: 'Application is over its connection quota',
  idle: 'Closed after inactivity: no subscription',
  app_disabled: 'Application is disabled',
};

/** Notices for one connection that are not channel messages. */
export type ConnectionNotice = { readonly kind: 'watchlist'; readonly online: string[]; readonly offline: string[] };

export interface SignedInUser {
  readonly id: string;
  readonly info?: unknown;
  readonly session?: string;
  readonly watchlist: readonly string[];
}

/**
 * One client connection as the hub sees it. It knows nothing of sockets or of any wire
 * format: bytes come ready-made from `wire`, which is shared by every connection of a kind.
 */
export interface Connection {
  readonly id: SocketId;
  /** Replaced by the hub when the app changes while the connection is open (a rotated secret). */
  app: App;
  readonly wire: WireEncoder;
  readonly protocol: 'pusher' | 'native';
  /** Epoch ms of the client's last sign of life. */
  readonly lastActivityAt: number;
  /** Set once the connection has authenticated as a user (Pusher sign-in, native auth). */
  user: SignedInUser | undefined;
  /** The embedding application's data (a bounded JSON copy, see embedding/metadata.ts); shown in info answers. */
  metadata: unknown;
  /** Channel names this connection is subscribed to; maintained by the hub. */
  readonly channels: Set<string>;
  /** Writes pre-encoded bytes; never throws. Returns false when the bytes were dropped. */
  write(bytes: Buffer): boolean;
  notify(notice: ConnectionNotice): void;
  close(reason: CloseReason): void;
}
