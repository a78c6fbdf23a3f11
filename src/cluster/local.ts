import { randomUUID } from 'node:crypto';
import type { BusSink, ClusterCommand, CommandResult, MessageBus } from '../core/bus.js';
import type { ChannelMessage } from '../core/message.js';

/** One node, no network: a publish is delivered here, synchronously; there is no one to tell. */
export class LocalBus implements MessageBus {
  readonly nodeId = randomUUID();
  readonly isHealthy = true;
  private sink: BusSink | undefined;

  start(sink: BusSink): Promise<void> {
    this.sink = sink;
    return Promise.resolve();
  }

  publish(appId: string, message: ChannelMessage): void {
    this.sink?.deliver(appId, message);
  }

  announce(): void {}

  request(command: ClusterCommand): Promise<CommandResult[]> {
    return Promise.resolve(this.sink ? [this.sink.execute(command)] : []);
  }

  close(): Promise<void> {
    this.sink = undefined;
    return Promise.resolve();
  }
}
