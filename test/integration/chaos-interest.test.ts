import { it } from 'node:test';
import { natsBinaryMissing, redisBinariesMissing } from '../helpers/cluster.js';
import { runChaos } from '../chaos/scenario.js';

// The short chaos round with clusterRouting: interest (see test/chaos/scenario.ts).
it('chaos on Redis with interest routing: no ghost, no missing member, no duplicate, no lost webhook, no lying /ready', { skip: redisBinariesMissing(), timeout: 120_000 }, async () => {
  await runChaos({ engine: 'redis', rounds: 1, routing: 'interest' });
});

it('chaos on NATS with interest routing: no ghost, no missing member, no duplicate, no lost webhook, no lying /ready', { skip: natsBinaryMissing(), timeout: 120_000 }, async () => {
  await runChaos({ engine: 'nats', rounds: 1, routing: 'interest' });
});
