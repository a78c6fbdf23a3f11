import type { Harness, WindowReport } from '../harness.js';
import type { Options } from '../options.js';
import type { Row } from '../report.js';

export interface ScenarioOutput {
  rows: Row[];
  /** Scenario-specific fields of the final JSON line. */
  json: Record<string, unknown>;
  /** The run met its correctness bar (e.g. 100 % delivery). */
  ok: boolean;
  window: WindowReport | undefined;
}

export interface Scenario {
  name: string;
  summary: string;
  /** How many client connections the run will hold, to size workers before starting. */
  connections(opts: Options): number;
  /** Extra environment for the server the harness spawns (default: none). */
  serverEnv?(opts: Options): Record<string, string>;
  run(h: Harness): Promise<ScenarioOutput>;
}
