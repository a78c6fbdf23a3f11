import { runChaos, type EngineName } from './scenario.js';

/**
 * `npm run chaos`: the chaos scenario on Redis and NATS for CHAOS_ROUNDS rounds (default 5);
 * CHAOS_ENGINES=redis,nats picks the engines, CHAOS_ROUTING=interest the nodes' clusterRouting. Exits 1 on the first broken guarantee.
 */
const rounds = Number(process.env.CHAOS_ROUNDS ?? 5);
const routing = process.env.CHAOS_ROUTING === 'interest' ? 'interest' : 'broadcast';
const engines = (process.env.CHAOS_ENGINES ?? 'redis,nats').split(',').filter(Boolean) as EngineName[];
for (const engine of engines) {
  const started = Date.now();
  try {
    const result = await runChaos({ engine, rounds, routing, log: (line) => process.stdout.write(`[${engine}] ${line}\n`) });
    process.stdout.write(`[${engine}] ok: ${rounds} rounds, ${result.published} publishes, ${result.webhooks} webhooks, ${Date.now() - started} ms\n`);
  } catch (err) {
    process.stderr.write(`[${engine}] ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}
process.exit(0);
