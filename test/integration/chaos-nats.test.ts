import { it } from 'node:test';
import { natsBinaryMissing } from '../helpers/cluster.js';
import { runChaos } from '../chaos/scenario.js';

// One round of the chaos scenario (npm run chaos runs more): see test/chaos/scenario.ts.
it('chaos on NATS: SIGKILL, partition and heal, engine restart; no ghost, no missing member, no duplicate, no lost webhook, no lying /ready', { skip: natsBinaryMissing(), timeout: 120_000 }, async () => {
  await runChaos({ engine: 'nats', rounds: 1 });
});
