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
  onClose(): void;
}
