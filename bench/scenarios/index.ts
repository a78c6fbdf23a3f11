import { channels } from './channels.js';
import { crossNode } from './cross-node.js';
import { fanout } from './fanout.js';
import { history } from './history.js';
import { idle } from './idle.js';
import { latency } from './latency.js';
import { presence } from './presence.js';
import { scale } from './scale.js';
import { storm } from './storm.js';
import type { Scenario } from './types.js';

/**
 * `cross-node` starts its own cluster nodes (ServerUnderTest.start per node) and points each
 * share of subscribers at one node through OpenSpec.host/port/tag; the harness's server is
 * its single-node reference.
 */
export const SCENARIOS: readonly Scenario[] = [fanout, latency, channels, idle, storm, presence, crossNode, scale, history];

export function findScenario(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name);
}
