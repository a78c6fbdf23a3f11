import type { SocketId } from './connection.js';
import type { Position } from './history.js';

/**
 * What the hub fans out on a channel. The kinds are semantic: each front-end decides how a
 * presence change or a subscription count looks on its wire.
 */
export type ChannelMessage =
  | {
      readonly kind: 'event';
      readonly channel: string;
      readonly event: string;
      /** Text as published; Buffer only for binary payloads of the native API. */
      readonly data: string | Buffer;
      /** `data` is JSON text to embed as it is (a client event's object), not a string value. */
      readonly dataIsJson?: boolean;
      /** Set on presence client events so receivers know who sent them. */
      readonly userId?: string;
      /** The publisher's own socket, which must not receive its event. */
      readonly exceptSocketId?: SocketId;
      /** Set for client events, which cache channels do not keep. */
      readonly fromClient?: boolean;
      /** With a user channel: only that user's connections of this session. */
      readonly session?: string;
      /** On channels that keep history: where the message sits in it. */
      readonly position?: Position;
    }
  | {
      readonly kind: 'member_added';
      readonly channel: string;
      readonly userId: string;
      readonly userInfo: unknown;
      readonly exceptSocketId?: SocketId;
    }
  | { readonly kind: 'member_removed'; readonly channel: string; readonly userId: string; readonly exceptSocketId?: SocketId }
  | { readonly kind: 'subscription_count'; readonly channel: string; readonly count: number; readonly exceptSocketId?: SocketId };

/**
 * Turns a channel message into the exact bytes one kind of connection receives, or null when
 * that kind does not receive such messages (raw native clients get no presence notices).
 */
export interface WireEncoder {
  encode(message: ChannelMessage): Buffer | null;
}

/**
 * A message on its way to many connections. Each encoding is built once and the same bytes
 * are written to every recipient that shares the encoder (the rule that keeps fan-out cheap).
 */
export class Outbound {
  private lastEncoder: WireEncoder | undefined;
  private lastBytes: Buffer | null = null;
  private others: Map<WireEncoder, Buffer | null> | undefined;

  constructor(readonly message: ChannelMessage) {}

  bytesFor(encoder: WireEncoder): Buffer | null {
    if (encoder === this.lastEncoder) return this.lastBytes;
    let bytes = this.others?.get(encoder);
    if (bytes === undefined) {
      bytes = encoder.encode(this.message);
      (this.others ??= new Map()).set(encoder, bytes);
    }
    this.lastEncoder = encoder;
    this.lastBytes = bytes;
    return bytes;
  }
}
