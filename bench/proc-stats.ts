// CPU time and memory of the server under test, read from /proc. The whole
// process tree is summed because a server command may be a wrapper (npx, sh)
// around the real process, or may run cluster workers.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

interface StatLine {
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): StatLine | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses; fields resume after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const st = readStat(pid);
    if (st) parentOf.set(pid, st.ppid);
  }
  const tree = [root];
  // Bounded: each pass adds at least one pid or stops.
  for (let changed = true; changed; ) {
    changed = false;
    for (const [pid, ppid] of parentOf) {
      if (!tree.includes(pid) && tree.includes(ppid)) {
        tree.push(pid);
        changed = true;
      }
    }
  }
  return tree;
}

export interface ProcSample {
  pids: number[];
  /** user + system CPU of the whole tree, µs (resolution 1/CLK_TCK s). */
  cpuUs: number;
  rssBytes: number;
}

export function sampleProcessTree(root: number): ProcSample | undefined {
  if (!readStat(root)) return undefined;
  const pids = descendants(root);
  let ticks = 0;
  let rssKb = 0;
  for (const pid of pids) {
    ticks += readStat(pid)?.cpuTicks ?? 0;
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) rssKb += Number(m[1]);
    } catch {
      // Process exited between listing and reading: it no longer uses memory.
    }
  }
  return { pids, cpuUs: (ticks / ticksPerSecond()) * 1e6, rssBytes: rssKb * 1024 };
}

/** Soft "Max open files" of a process, which caps how many sockets the server can accept. */
export function maxOpenFiles(pid: number): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return undefined;
  }
}
