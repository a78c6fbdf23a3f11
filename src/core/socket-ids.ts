import { randomInt } from 'node:crypto';

/**
 * Socket ids as Pusher server SDKs accept them (`/^\d+\.\d+$/`): a random number chosen once per
 * process, then a counter. Unique on this node by construction and across nodes with a
 * collision chance of one in a billion per pair of processes.
 */
export function socketIdFactory(): () => string {
  const node = randomInt(1, 1_000_000_000);
  let next = 0;
  return () => `${node}.${++next}`;
}
