import { Redis, type Command } from 'ioredis';

/** Commands sent and not yet answered that a store client holds at most. */
export const MAX_PENDING_COMMANDS = 10_000;

/** A store command refused at once: the engine is not answering and the client holds enough already. */
export class StoreBackloggedError extends Error {
  override readonly name = 'StoreBackloggedError';
}

/**
 * A Redis client whose queues stay bounded while Redis is away. Down (disconnected): no offline
 * queue, a command fails at once. Frozen (connected, not answering): ioredis keeps every command
 * sent until its answer comes (commandTimeout only rejects the caller's promise), so beyond
 * `maxPending` unanswered commands a new one is refused at once rather than queued. Nothing
 * needs a restart: the client reconnects by itself and the backlog drains when Redis answers.
 */
export class BoundedRedis extends Redis {
  constructor(
    url: string,
    options: { readonly maxRetriesPerRequest: number; readonly commandTimeout: number; readonly lazyConnect?: boolean },
    private readonly maxPending = MAX_PENDING_COMMANDS,
  ) {
    super(url, { ...options, enableOfflineQueue: false });
  }

  override sendCommand(command: Command, stream?: Parameters<Redis['sendCommand']>[1]): unknown {
    if (this.commandQueue.length >= this.maxPending) {
      command.reject(new StoreBackloggedError(`Redis is not answering: ${this.commandQueue.length} commands wait already`));
      return command.promise;
    }
    return super.sendCommand(command, stream);
  }
}
