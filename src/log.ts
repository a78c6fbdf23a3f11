import { pino, type Logger as PinoLogger } from 'pino';

/** Structured logger with child loggers; secrets never go into its fields. */
export type Logger = PinoLogger;

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'switchboard' } });
}
