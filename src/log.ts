import { createRequire } from 'node:module';
import { pino, stdSerializers, type Logger as PinoLogger } from 'pino';
import type PinoPretty from 'pino-pretty';

/** Structured logger with child loggers; secrets never go into its fields. */
export type Logger = PinoLogger;

/** `auto`: pretty on a terminal, JSON lines otherwise (a file, a pipe, a log collector). */
export type LogFormatSetting = 'auto' | 'json' | 'pretty';

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

/** What `setting` means for output going to `stream`: only a terminal gets pretty lines unasked. */
export function logFormatFor(setting: LogFormatSetting, stream: { readonly isTTY?: boolean }): 'json' | 'pretty' {
  if (setting !== 'auto') return setting;
  return stream.isTTY === true ? 'pretty' : 'json';
}

/** A logger to stdout: JSON lines, or coloured human-readable lines when the format (or a terminal) says so. */
export function createLogger(level: string, format: LogFormatSetting = 'json'): Logger {
  const options = { level, base: { service: 'switchboard' }, serializers: { err: serializeError } };
  if (logFormatFor(format, process.stdout) === 'json') return pino(options);
  // Loaded only for people reading a terminal: JSON-line servers skip its start-up cost.
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  // In-process and synchronous (no worker thread): a line is on the terminal before the next one is made.
  return pino(options, pinoPretty({ colorize: true, sync: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' }));
}
