import { channels } from './channels.js';
import { fanout } from './fanout.js';
import { idle } from './idle.js';
import { latency } from './latency.js';
import { presence } from './presence.js';
import { storm } from './storm.js';
import type { Scenario } from './types.js';

/**
 * Extension point for `cross-node` (with clustering): publish through node A,
 * subscribe on node B. It will need a list of targets instead of one
 * (Harness.server → servers[]), and OpenSpec already carries host/port per
 * open() call, so subscribers can be pointed at another node. Register the
 * scenario here once the server supports clustering.
 */
export const SCENARIOS: readonly Scenario[] = [fanout, latency, channels, idle, storm, presence];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
