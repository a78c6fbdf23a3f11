import type { Traffic } from './app-state.js';
import type { Connection } from './connection.js';
import { Outbound, type ChannelMessage } from './message.js';

/**
 * The one delivery loop: frames the message once per wire format and writes it to every target
 * but the excluded socket, counting what went out. Callers narrow the targets beforehand, so
 * nothing here costs more per recipient than the write.
 */
export function fanOut(targets: Iterable<Connection>, message: ChannelMessage, traffic: Traffic): void {
  const out = new Outbound(message);
  const except = message.exceptSocketId;
  let frames = 0;
  let bytesSent = 0;
  for (const conn of targets) {
    if (conn.id === except) continue;
    const bytes = out.bytesFor(conn.wire);
    if (bytes !== null && conn.write(bytes)) {
      frames += 1;
      bytesSent += bytes.length;
    }
  }
  traffic.delivered += frames;
  traffic.deliveredBytes += bytesSent;
}
