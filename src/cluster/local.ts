import type { MessageBus } from '../core/bus.js';
import type { ChannelMessage } from '../core/message.js';

/** One node, no network: a publish is delivered here, synchronously. */
export class LocalBus implements MessageBus {
  private deliver: ((appId: string, message: ChannelMessage) => void) | undefined;

  start(deliverLocal: (appId: string, message: ChannelMessage) => void): Promise<void> {
    this.deliver = deliverLocal;
    return Promise.resolve();
  }

  publish(appId: string, message: ChannelMessage): void {
    this.deliver?.(appId, message);
  }

  close(): Promise<void> {
    this.deliver = undefined;
    return Promise.resolve();
  }
}
