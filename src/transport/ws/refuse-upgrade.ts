import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** Installed on an upgrading socket until ws takes it over: a reset must cost only that socket. */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** How long a refused upgrade's client gets to read the answer before its socket is closed. */
const REFUSAL_LINGER_MS = 1_000;

/**
 * Answers an upgrade with a plain HTTP error and closes the socket, also when the client keeps
 * its side open (a refusal must not hold a file descriptor, nor get round maxConnectionsPerIp).
 */
export function refuseUpgrade(socket: Duplex, status: number, json: Record<string, unknown>, retryAfter?: number): void {
  if (!socket.listeners('error').includes(destroyOnError)) socket.on('error', destroyOnError);
  if (socket.destroyed) return;
  const body = JSON.stringify(json);
  const extra = retryAfter === undefined ? '' : `Retry-After: ${retryAfter}\r\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n${extra}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}
