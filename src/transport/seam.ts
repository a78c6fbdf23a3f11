/**
 * The seam between the protocol front-ends and a WebSocket engine. Front-ends import only this
 * file and frame.ts (both import no engine); an engine (today `ws`, in ws/) implements
 * ClientLink and calls UpgradeRoute/LinkHandler. A second engine is a second folder beside ws/.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestTarget } from '../util/request-target.js';

/** Bounds on what waits to be sent to one client, and what happens when they are reached. */
export interface QueuePolicy {
  readonly maxBytes: number;
  readonly maxMessages: number;
  /** drop: drop the frame; close: the handler closes the link; wait: drop frames while giving the client `waitMs` to drain, then close. */
  readonly onFull: 'drop' | 'close' | 'wait';
  readonly waitMs: number;
}

/**
 * The face a protocol front-end sees of one client socket, independent of the WebSocket
 * engine underneath.
 */
export interface ClientLink {
  /** Replaces the default queue bounds once the front-end knows the client's app. */
  setQueuePolicy(policy: QueuePolicy): void;
  /**
   * Pings the client after this much silence rather than after the transport's activity timeout:
   * for clients that send nothing on their own, whose connections a proxy would otherwise cut.
   */
  setPingAfter(ms: number): void;
  /** Counts this link's traffic (and its opening) under the app from now on, once the front-end knows it. */
  attribute(appId: string): void;
  /** Writes a complete, pre-built frame. False when it was refused (link closed or queue full). */
  write(frame: Buffer): boolean;
  sendText(text: string): boolean;
  close(code: number, reason: string): void;
  readonly isOpen: boolean;
  /** Epoch ms of the last frame (data or control) received from the client. */
  readonly lastActivityAt: number;
}

/** What the transport calls on the front-end that owns a link. */
export interface LinkHandler {
  onMessage(data: Buffer, isBinary: boolean): void;
  /** The client has been silent for the activity timeout: ask it for a sign of life. */
  onIdle(): void;
  /** The client did not answer onIdle's ping in time. */
  onPongTimeout(): void;
  /** The send queue stayed full (per its policy): close as a slow consumer. */
  onOverflow(): void;
  /** A frame was dropped because the send queue was full. */
  onDropped(): void;
  /** The socket closed: `code` and `reason` of the close frame received (1005 when it had none, 1006 when the socket dropped). */
  onClose(code?: number, reason?: string): void;
}

export type Admission = { ok: true; state?: unknown } | { ok: false; status: number; body: Record<string, unknown>; retryAfter?: number };

/**
 * A front-end's claim on a URL path. `admit` runs before the handshake (origin checks,
 * authentication) and may refuse with an HTTP status; what it learns is handed to `open`.
 * A verdict known at once is returned as it is, so the handshake goes on in the same turn.
 */
export interface UpgradeRoute {
  /** The protocol's name in the metrics. */
  readonly protocol: string;
  matches(path: string): boolean;
  /** `clientAddress`: the client's IP (the TCP peer, or what trusted proxies report), looked up when first asked. */
  admit?(req: IncomingMessage, url: RequestTarget, clientAddress: () => string): Admission | Promise<Admission>;
  open(link: ClientLink, req: IncomingMessage, url: RequestTarget, state: unknown): LinkHandler;
}

/** RFC 6455 close codes an engine or front-end sends itself (the protocols' own are in their tables). */
export const StandardCloseCode = {
  /** The server is shutting down. */
  GoingAway: 1001,
  /** A message larger than `maxMessageBytes` (sent by the engine). */
  MessageTooBig: 1009,
  /** A front-end failed on this connection (a bug): it costs this connection only. */
  InternalError: 1011,
} as const;
