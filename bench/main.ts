// Switchboard benchmark tool. See HELP in options.ts, or run with --help.

import { Harness } from './harness.js';
import { HELP, parseOptions, type Options } from './options.js';
import { printJsonLine, printTable } from './report.js';
import { SCENARIOS, findScenario } from './scenarios/index.js';
import { killAllSpawnedServers } from './server-under-test.js';

let harness: Harness | undefined;

function emergencyStop(): void {
  harness?.killNow();
  killAllSpawnedServers();
}

async function main(): Promise<number> {
  let parsed: { scenario: string | undefined; options: Options };
  try {
    parsed = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const { scenario: name, options } = parsed;
  if (options.help || name === undefined) {
    process.stdout.write(`${HELP}\n`);
    return name === undefined && !options.help ? 2 : 0;
  }
  const scenario = findScenario(name);
  if (!scenario) {
    process.stderr.write(`unknown scenario "${name}"; known: ${SCENARIOS.map((s) => s.name).join(', ')}\n`);
    return 2;
  }

  // Hard stop: whatever hangs, the tool ends and takes its server with it.
  setTimeout(() => {
    process.stderr.write(`timeout: run exceeded --timeout ${options.timeoutS}s, stopping\n`);
    printJsonLine({ scenario: name, ok: false, error: 'timeout' });
    process.exit(3);
  }, options.timeoutS * 1000).unref();

  const startedAt = new Date().toISOString();
  try {
    harness = await Harness.create(options, scenario.connections(options), scenario.serverEnv?.(options));
    const out = await scenario.run(harness);
    const h = harness;
    const rows = [
      ['server', h.server.description] as [string, string],
      ['protocol', options.protocol] as [string, string],
      ...out.rows,
      ['result', out.ok ? 'OK' : 'FAILED'] as [string, string],
    ];
    printTable(`switchboard bench: ${scenario.name}`, rows);
    for (const w of h.warnings) process.stdout.write(`${w.startsWith('WARNING') ? w : `WARNING: ${w}`}\n`);
    await h.dispose();
    harness = undefined;
    printJsonLine({
      scenario: scenario.name,
      ok: out.ok,
      startedAt,
      server: h.server.description,
      protocol: options.protocol,
      pinned: options.pin,
      ...out.json,
      warnings: h.warnings,
    });
    return out.ok ? 0 : 1;
  } catch (err) {
    // Stack traces only on request: most errors here are setup problems, not bugs.
    const e = err as Error;
    process.stderr.write(`error: ${process.env.BENCH_DEBUG ? (e.stack ?? String(e)) : e.message}\n`);
    const h = harness;
    harness = undefined;
    await h?.dispose().catch(() => undefined);
    emergencyStop();
    printJsonLine({ scenario: name, ok: false, startedAt, error: (err as Error).message });
    return 2;
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`\n${sig}: stopping server and workers\n`);
    emergencyStop();
    process.exit(130);
  });
}
process.on('exit', emergencyStop);

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fatal: ${String(err)}\n`);
    emergencyStop();
    process.exit(2);
  },
);
