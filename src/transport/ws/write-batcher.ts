/**
 * Everything written to one socket within an event-loop turn leaves in one write: a link
 * queues frames and asks to be flushed once, in setImmediate. For fan-out this turns a
 * syscall (and a stream write request) per message per recipient into one per recipient per
 * turn, which measured as the difference between ~0.13M and ~1.5M deliveries/s on this
 * project's reference machine.
 */
export interface Flushable {
  flushQueued(): void;
}

const waiting: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  // A flush may run code that queues again; that goes to the next turn's list.
  const links = waiting.splice(0, waiting.length);
  for (const link of links) link.flushQueued();
}

/** Call when a link queues its first frame of the turn. */
export function flushSoon(link: Flushable): void {
  waiting.push(link);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
