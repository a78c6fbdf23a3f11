import type { ChannelMessage } from './message.js';

/**
 * How a published message reaches every node that serves the channel. The in-process bus
 * delivers straight to this node; cluster engines (cluster/) carry it to the others too.
 * Implementations must deliver each message once per node, in publish order per publisher.
 */
export interface MessageBus {
  start(deliverLocal: (appId: string, message: ChannelMessage) => void): Promise<void>;
  publish(appId: string, message: ChannelMessage): void;
  close(): Promise<void>;
}
