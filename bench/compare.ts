// Runs the issue-#6 scenarios against several servers in one go, one fresh server per run and
// one run at a time (server on core 0, load generator on core 1), and prints one table with
// medians: Switchboard beside soketi and the baselines, measured on the same machine, same day.
//
//   npm run bench:compare -- [--servers switchboard,ws-batched,...] [--scenarios fanout-1k,latency,...]
//                            [--runs 3] [--soketi DIR] [--uws DIR]
//
// --soketi: a directory where `@soketi/soketi` is installed (its node_modules parent);
// --uws: an installed uWebSockets.js directory. Servers whose software is not given are skipped.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const DIST = fileURLToPath(new URL('.', import.meta.url));
const MAIN = join(DIST, 'main.js');

interface ServerEntry {
  name: string;
  /** Arguments that make main.js spawn this server, or undefined when it is not installed. */
  args: (dirs: { soketi?: string | undefined; uws?: string | undefined }) => string[] | undefined;
}

const baseline = (file: string, extra = ''): string => `node ${join(DIST, 'baselines', file)}${extra}`;

const SERVERS: ServerEntry[] = [
  { name: 'switchboard', args: () => ['--server', 'switchboard'] },
  {
    name: 'soketi',
    args: ({ soketi }) => {
      const bin = soketi && join(soketi, 'node_modules/@soketi/soketi/bin/server.js');
      if (!bin || !existsSync(bin)) return undefined;
      const env = 'SOKETI_DEFAULT_APP_ID={appId} SOKETI_DEFAULT_APP_KEY={appKey} SOKETI_DEFAULT_APP_SECRET={appSecret} SOKETI_PORT={port}';
      return ['--server-cmd', `${env} node ${bin} start`];
    },
  },
  { name: 'ws-send', args: () => ['--server-cmd', baseline('ws-server.js', ' --mode send')] },
  { name: 'ws-frame', args: () => ['--server-cmd', baseline('ws-server.js', ' --mode frame')] },
  { name: 'ws-batched', args: () => ['--server-cmd', baseline('ws-server.js', ' --mode batched')] },
  {
    name: 'uws',
    args: ({ uws }) => (uws && existsSync(uws) ? ['--server-cmd', `UWS_MODULE=${uws} ${baseline('uws-server.js')}`] : undefined),
  },
];

type Json = Record<string, unknown>;

interface ScenarioEntry {
  name: string;
  /** A function when the arguments depend on this server's earlier results (undefined: cannot run). */
  args: string[] | ((row: Record<string, number | undefined>) => string[] | undefined);
  /** Column label → value taken from the scenario's JSON line. */
  columns: Record<string, (j: Json) => number | undefined>;
  /** Servers that speak what this scenario needs (all when absent). */
  only?: string[];
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const lat = (j: Json, p: 'p50' | 'p99'): number | undefined => num((j.latencyMs as Json | undefined)?.[p]);

const SCENARIOS: ScenarioEntry[] = [
  {
    name: 'fanout-1k',
    args: ['fanout', '--subs', '1000', '--concurrency', '32'],
    columns: { 'fan-out 1k (msgs/s)': (j) => num(j.deliveredPerSecond), 'µs CPU/msg (1k)': (j) => num(j.serverCpuUsPerDelivered) },
  },
  {
    name: 'fanout-10k',
    args: ['fanout', '--subs', '10000', '--concurrency', '16'],
    columns: { 'fan-out 10k (msgs/s)': (j) => num(j.deliveredPerSecond), 'µs CPU/msg (10k)': (j) => num(j.serverCpuUsPerDelivered) },
  },
  {
    name: 'latency',
    args: ['latency', '--subs', '1000', '--rate', '50'],
    columns: { 'p50 ms (1k×50/s)': (j) => lat(j, 'p50'), 'p99 ms (1k×50/s)': (j) => lat(j, 'p99') },
  },
  {
    // Half of the maximum fan-out rate this server reached with 1k subscribers (so it needs fanout-1k first).
    name: 'latency-half',
    args: (row) => {
      const max = row['fan-out 1k (msgs/s)'];
      return max === undefined ? undefined : ['latency', '--subs', '1000', '--rate', String(Math.max(1, Math.round(max / 2 / 1000))), '--concurrency', '32'];
    },
    columns: { 'p99 ms (half max rate)': (j) => lat(j, 'p99') },
  },
  {
    name: 'channels',
    args: ['channels', '--subs', '10000'],
    columns: { 'µs CPU/event (channels)': (j) => num(j.serverCpuUsPerEvent), 'events/s (channels)': (j) => num(j.eventsPerSecond) },
  },
  {
    // The native API's POST /broadcast, one per event, to the same many channels (Switchboard only:
    // the baselines speak the Pusher subset; the target compares it with their REST `events`).
    name: 'channels-native',
    args: ['channels', '--subs', '10000', '--protocol', 'native'],
    columns: { 'µs CPU/event (native /broadcast)': (j) => num(j.serverCpuUsPerEvent), 'events/s (native /broadcast)': (j) => num(j.eventsPerSecond) },
    only: ['switchboard'],
  },
  {
    // The native API's POST /send to each client's user (clients sign in with a JWT), same shape.
    name: 'channels-send',
    args: ['channels', '--subs', '10000', '--protocol', 'native', '--send'],
    columns: { 'µs CPU/event (native /send)': (j) => num(j.serverCpuUsPerEvent), 'events/s (native /send)': (j) => num(j.eventsPerSecond) },
    only: ['switchboard'],
  },
  {
    name: 'channels-batch',
    args: ['channels', '--subs', '10000', '--batch'],
    columns: { 'µs CPU/event (batch)': (j) => num(j.serverCpuUsPerEvent), 'events/s (batch)': (j) => num(j.eventsPerSecond) },
  },
  {
    name: 'idle-10k',
    args: ['idle', '--subs', '10000'],
    columns: { 'KB RSS/conn (10k)': (j) => kb(j.serverRssPerConnectionBytes) },
  },
  {
    name: 'idle-19k',
    args: ['idle', '--subs', '19000'],
    columns: { 'KB RSS/conn (19k)': (j) => kb(j.serverRssPerConnectionBytes) },
  },
  {
    name: 'storm',
    args: ['storm', '--subs', '10000', '--connect-concurrency', '500'],
    columns: { 'handshakes/s': (j) => num(j.handshakesPerSecond), 'µs CPU/handshake': (j) => num(j.serverCpuUsPerHandshake) },
  },
];

type Rows = Record<string, Record<string, number | undefined>>;

interface TargetResult {
  name: string;
  met: boolean | undefined;
  line: string;
}

/** The corked `ws` baseline when it ran, else the plainer `ws` modes. */
const BASELINES = ['ws-batched', 'ws-frame', 'ws-send'];

/**
 * Issue #20's targets, each as met / not met with its figure. CPU targets are ratios to a `ws`
 * baseline measured in the same run, so a loaded or slower machine moves both sides alike.
 */
function checkTargets(rows: Rows): TargetResult[] {
  const ours = rows.switchboard;
  if (!ours) return [];
  const baseName = BASELINES.find((b) => rows[b]);
  const base = baseName ? rows[baseName] : undefined;
  const out: TargetResult[] = [];
  const ratio = (name: string, ourColumn: string, baseColumn: string, limit: number): void => {
    const a = ours[ourColumn];
    const b = base?.[baseColumn];
    if (a === undefined) return;
    if (b === undefined || !baseName) {
      out.push({ name, met: undefined, line: `${name}: ${format(a)} µs, no ${BASELINES.join('/')} figure in this run to compare with` });
      return;
    }
    const r = a / b;
    const met = r <= limit;
    out.push({ name, met, line: `${name}: ${met ? 'MET' : 'NOT MET'}, ${format(a)} vs ${baseName} ${format(b)} µs = ${r.toFixed(2)}× (target ≤ ${limit}×)` });
  };
  ratio('many channels, REST events, CPU/event', 'µs CPU/event (channels)', 'µs CPU/event (channels)', 1.15);
  ratio('many channels, batch_events, CPU/event', 'µs CPU/event (batch)', 'µs CPU/event (batch)', 1.15);
  ratio('many channels, native POST /broadcast, CPU/event', 'µs CPU/event (native /broadcast)', 'µs CPU/event (channels)', 1.15);
  ratio('many channels, native POST /send to users, CPU/event', 'µs CPU/event (native /send)', 'µs CPU/event (channels)', 1.15);
  ratio('connect + subscribe, CPU/connection', 'µs CPU/handshake', 'µs CPU/handshake', 1.1);
  const memory = ours['KB RSS/conn (19k)'];
  if (memory !== undefined) {
    const met = memory <= 3.7;
    out.push({ name: 'memory per idle subscribed connection at 19k', met, line: `memory per idle subscribed connection at 19k: ${met ? 'MET' : 'NOT MET'}, ${format(memory)} KB (target ≤ 3.7 KB)` });
  }
  if (out.length) {
    out.push({ name: 'not measured here', met: undefined, line: 'not measured here: the cluster target (`npm run bench -- cross-node --pin`, publishing node ≥ 90 % of single-node efficiency)' });
  }
  return out;
}

function kb(v: unknown): number | undefined {
  const b = num(v);
  return b === undefined ? undefined : b / 1024;
}

function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : ((s[mid - 1]) + (s[mid])) / 2;
}

function format(v: number | undefined): string {
  if (v === undefined) return '–';
  if (v >= 100_000) return `${(v / 1e6).toFixed(2)}M`;
  if (v >= 1000) return `${(v / 1000).toFixed(1)}k`;
  return v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** Runs main.js once; resolves with its JSON line (or an error description). Bounded by main.js's own --timeout. */
function runOnce(args: string[]): Promise<Json> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => {
      const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
      try {
        resolve(line ? (JSON.parse(line) as Json) : { ok: false, error: `exit ${code}, no JSON line` });
      } catch {
        resolve({ ok: false, error: 'unparsable JSON line' });
      }
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string', default: SERVERS.map((s) => s.name).join(',') },
      scenarios: { type: 'string', default: SCENARIOS.map((s) => s.name).join(',') },
      runs: { type: 'string', default: '1' },
      soketi: { type: 'string' },
      uws: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `npm run bench:compare -- [--servers ${SERVERS.map((s) => s.name).join(',')}]\n` +
        `                        [--scenarios ${SCENARIOS.map((s) => s.name).join(',')}]\n` +
        '                        [--runs N] [--soketi DIR] [--uws DIR]\n',
    );
    return;
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 5) throw new Error('--runs must be 1..5');
  const pick = <T extends { name: string }>(all: T[], list: string, what: string): T[] =>
    list.split(',').map((name) => {
      const found = all.find((x) => x.name === name.trim());
      if (!found) throw new Error(`unknown ${what} "${name}"; known: ${all.map((x) => x.name).join(', ')}`);
      return found;
    });
  const servers = pick(SERVERS, values.servers, 'server');
  const scenarios = pick(SCENARIOS, values.scenarios, 'scenario');
  const dirs = { soketi: values.soketi, uws: values.uws };

  const columns = scenarios.flatMap((s) => Object.keys(s.columns));
  const rows: Record<string, Record<string, number | undefined>> = {};
  const failures: string[] = [];
  const flagged = new Set<string>();
  for (const server of servers) {
    const serverArgs = server.args(dirs);
    if (!serverArgs) {
      process.stderr.write(`skipping ${server.name}: not installed (see --${server.name === 'uws' ? 'uws' : 'soketi'})\n`);
      continue;
    }
    const row: Record<string, number | undefined> = {};
    for (const scenario of scenarios) {
      const samples: Record<string, number[]> = {};
      if (scenario.only && !scenario.only.includes(server.name)) continue;
      const scenarioArgs = typeof scenario.args === 'function' ? scenario.args(row) : scenario.args;
      if (!scenarioArgs) failures.push(`${server.name} ${scenario.name}: needs an earlier scenario's result`);
      for (let i = 0; scenarioArgs && i < runs; i++) {
        process.stderr.write(`${server.name} ${scenario.name} run ${i + 1}/${runs}\n`);
        const j = await runOnce([...scenarioArgs, ...serverArgs, '--pin', '--ready-path', '/ready', '--timeout', '240']);
        if (j.ok !== true) {
          failures.push(`${server.name} ${scenario.name}: ${typeof j.error === 'string' ? j.error : ((j.warnings as string[] | undefined)?.join('; ') ?? 'not ok')}`);
          for (const label of Object.keys(scenario.columns)) flagged.add(`${server.name}\0${label}`);
        }
        // A run that is not OK still measured something (e.g. a server that closes every HTTP
        // connection): its figures are kept and flagged with * in the table.
        for (const [label, get] of Object.entries(scenario.columns)) {
          const v = get(j);
          if (v !== undefined) (samples[label] ??= []).push(v);
        }
      }
      for (const label of Object.keys(scenario.columns)) row[label] = median(samples[label] ?? []);
    }
    rows[server.name] = row;
  }

  const header = `| server | ${columns.join(' | ')} |`;
  const rule = `|---|${columns.map(() => '---').join('|')}|`;
  const cell = (name: string, c: string, v: number | undefined): string => format(v) + (v !== undefined && flagged.has(`${name}\0${c}`) ? '*' : '');
  const body = Object.entries(rows).map(([name, row]) => `| ${name} | ${columns.map((c) => cell(name, c, row[c])).join(' | ')} |`);
  process.stdout.write(`\nmedians of ${runs} run(s) per cell; – = not measured; * = a run behind this cell was not OK\n${[header, rule, ...body].join('\n')}\n`);
  if (failures.length) process.stdout.write(`\nruns not OK:\n${failures.map((f) => `- ${f}`).join('\n')}\n`);
  const targets = checkTargets(rows);
  if (targets.length) process.stdout.write(`\ntargets of issue #20 (ratios within this run):\n${targets.map((t) => `- ${t.line}`).join('\n')}\n`);
  process.stdout.write(`${JSON.stringify({ compare: true, runs, rows, failures, targets })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
