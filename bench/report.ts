// Output: an aligned human table, then exactly one JSON line that scripts can
// take from the end of stdout.

import type { WindowReport } from './harness.js';

export type Row = [label: string, value: string | number | undefined];

export function printTable(title: string, rows: Row[]): void {
  const width = Math.max(...rows.map(([l]) => l.length), 10);
  const lines = [title, '-'.repeat(Math.max(title.length, width + 20))];
  for (const [label, value] of rows) lines.push(`${label.padEnd(width)}  ${value === undefined ? 'n/a' : String(value)}`);
  process.stdout.write(lines.join('\n') + '\n');
}

export function printJsonLine(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

export function num(n: number | undefined, digits = 1): number | undefined {
  if (n === undefined || !Number.isFinite(n)) return undefined;
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** 1234567 → "1,234,567" for the human table only. */
export function fmt(n: number | undefined, digits = 1): string | undefined {
  const v = num(n, digits);
  return v === undefined ? undefined : v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function pct(part: number, whole: number): number | undefined {
  return whole > 0 ? num((part / whole) * 100, 3) : undefined;
}

/** Rows every scenario shares: who did the work and at what CPU cost. */
export function windowRows(w: WindowReport): Row[] {
  const rows: Row[] = [
    ['measured window (s)', fmt(w.wallMs / 1000, 2)],
    ['server CPU (s)', w.serverCpuUs === undefined ? undefined : fmt(w.serverCpuUs / 1e6, 2)],
    ['server CPU (% of a core)', w.serverCpuUs === undefined ? undefined : fmt((w.serverCpuUs / 1000 / w.wallMs) * 100)],
    ['server RSS (MB)', w.serverRssBytes === undefined ? undefined : fmt(w.serverRssBytes / 2 ** 20)],
    [
      'server main thread waited for a CPU % (own helper threads ran % / outside load ~%)',
      w.serverWaitPct === undefined ? undefined : `${w.serverWaitPct} (${w.serverHelperPct} / ${w.serverForeignWaitPct})`,
    ],
  ];
  for (const p of w.loadgen)
    rows.push([
      `load-gen ${p.role} ${p.pid} CPU % (sys) [waited %, outside load ~%]`,
      `${p.cpuPct} (${p.sysPct}) [${p.waitPct ?? 'n/a'}, ${p.foreignWaitPct ?? 'n/a'}]`,
    ]);
  return rows;
}

export function windowJson(w: WindowReport): Record<string, unknown> {
  return {
    windowSeconds: num(w.wallMs / 1000, 3),
    serverCpuSeconds: w.serverCpuUs === undefined ? null : num(w.serverCpuUs / 1e6, 3),
    serverRssBytes: w.serverRssBytes ?? null,
    serverWaitPct: w.serverWaitPct ?? null,
    serverHelperThreadsPct: w.serverHelperPct ?? null,
    serverForeignWaitPct: w.serverForeignWaitPct ?? null,
    loadgen: w.loadgen,
  };
}
