import type { Position } from '../core/history.js';

/**
 * A message's place in its channel's history as both front-ends put it on the wire:
 * `,"position":{"epoch":…,"offset":…}` after the other fields (nothing without a position), and
 * the `since` a client sends back.
 */
export function positionField(position: Position | undefined): string {
  return position === undefined ? '' : `,"position":{"epoch":${JSON.stringify(position.epoch)},"offset":${position.offset}}`;
}

/** A subscribe's `since`: the last position the client saw, or undefined when it names none (or a malformed one). */
export function parsePosition(value: unknown): Position | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { epoch, offset } = value as Record<string, unknown>;
  return typeof epoch === 'string' && typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? { epoch, offset } : undefined;
}
