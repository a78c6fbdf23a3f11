import { pino, stdSerializers, type Logger as PinoLogger } from 'pino';

/** Structured logger with child loggers; secrets never go into its fields. */
export type Logger = PinoLogger;

/**
 * Errors as pino serialises them, less what a client library attached of the request that
 * failed: ioredis puts the command and its arguments on its errors, and those are claim ids
 * (single-use credentials) and the claims themselves.
 */
export function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { ...stdSerializers.err(err) };
  delete out.command;
  delete out.args;
  delete out.previousErrors;
  return out;
}

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'switchboard' }, serializers: { err: serializeError } });
}
