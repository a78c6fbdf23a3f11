// CPU time and memory of the server under test, read from /proc. The whole
// process tree is summed because a server command may be a wrapper (npx, sh)
// around the real process, or may run cluster workers.

import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

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
  /** Scheduler view of the tree's processes (undefined without schedstat). */
  sched: SchedSample | undefined;
}

/**
 * From /proc/<pid>/task/<tid>/schedstat (run time, run-queue wait, in ns):
 * - waitUs: how long the main (JavaScript) thread was runnable but had no CPU;
 * - helperRunUs: how long the process's other threads ran (V8 GC helpers, libuv pool).
 * On a core of its own a process's main thread waits only for its own helpers, so
 * waitUs − helperRunUs approximates the time other processes took from it: a server that
 * waits 20 % of the window for other processes is measured 20 % short.
 */
export interface SchedSample {
  waitUs: number;
  helperRunUs: number;
}

function readSchedstat(path: string): [runNs: number, waitNs: number] | undefined {
  try {
    const f = readFileSync(path, 'utf8').trim().split(' ');
    const run = Number(f[0]);
    const wait = Number(f[1]);
    return Number.isFinite(run) && Number.isFinite(wait) ? [run, wait] : undefined;
  } catch {
    return undefined;
  }
}

export function schedSample(pid: number): SchedSample | undefined {
  const main = readSchedstat(`/proc/${pid}/task/${pid}/schedstat`);
  if (!main) return undefined;
  let helperNs = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    // gone
  }
  for (const tid of tids) {
    if (tid === String(pid)) continue;
    helperNs += readSchedstat(`/proc/${pid}/task/${tid}/schedstat`)?.[0] ?? 0;
  }
  return { waitUs: main[1] / 1000, helperRunUs: helperNs / 1000 };
}

/** Shares of a window of `wallMs`, in % (0.1 resolution): main-thread wait, helper run time, and their difference. */
export function schedShares(
  from: SchedSample | undefined,
  to: SchedSample | undefined,
  wallMs: number,
): { waitPct: number; helperPct: number; foreignWaitPct: number } | undefined {
  if (!from || !to || wallMs <= 0) return undefined;
  const pct = (us: number): number => Math.round((us / 1000 / wallMs) * 1000) / 10;
  const wait = to.waitUs - from.waitUs;
  const helper = to.helperRunUs - from.helperRunUs;
  return { waitPct: pct(wait), helperPct: pct(helper), foreignWaitPct: pct(Math.max(0, wait - helper)) };
}

export function sampleProcessTree(root: number): ProcSample | undefined {
  if (!readStat(root)) return undefined;
  const pids = descendants(root);
  let ticks = 0;
  let rssKb = 0;
  let sched: SchedSample | undefined = { waitUs: 0, helperRunUs: 0 };
  for (const pid of pids) {
    ticks += readStat(pid)?.cpuTicks ?? 0;
    const s = schedSample(pid);
    sched = s && sched ? { waitUs: sched.waitUs + s.waitUs, helperRunUs: sched.helperRunUs + s.helperRunUs } : undefined;
    try {
      const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) rssKb += Number(m[1]);
    } catch {
      // Process exited between listing and reading: it no longer uses memory.
    }
  }
  return { pids, cpuUs: (ticks / ticksPerSecond()) * 1e6, rssBytes: rssKb * 1024, sched };
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

/**
 * The pid of the process listening on 127.0.0.1/::1:`port` (e.g. the machine's Redis or NATS),
 * found through /proc/net/tcp{,6} and /proc/<pid>/fd, so its CPU can be reported beside the
 * server's. undefined when it cannot be seen (another user's process, no /proc).
 */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local_address rem_address st ... inode (field 9)
      if (f.length < 10 || f[3] !== '0A') continue;
      const local = f[1];
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1])) return pid;
      } catch {
        // fd closed meanwhile
      }
    }
  }
  return undefined;
}
