// Starts (or attaches to) the server being measured, and measures it.

import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseTarget, type Target } from './loopback.js';
import { maxOpenFiles, sampleProcessTree, type ProcSample } from './proc-stats.js';
import type { AppCredentials } from './pusher-sign.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type ServerSpec =
  | { kind: 'url'; url: string; pid: number | undefined }
  | { kind: 'switchboard' }
  | { kind: 'cmd'; command: string };

export interface StartOptions {
  creds: AppCredentials;
  pin: boolean;
  readyPath: string;
  startupTimeoutMs: number;
  /** Native API token, handed to a spawned Switchboard. */
  token: string;
  /** Extra environment for a spawned server (e.g. the cluster adapter); wins over ours. */
  env?: Record<string, string>;
  /** With pin: the taskset CPU list for this server (default "0"). */
  core?: string;
  /** Node flags for a spawned Switchboard, e.g. ["--cpu-prof", "--cpu-prof-dir=/tmp/prof"]. */
  nodeArgs?: string[];
  /** Shown in descriptions and errors, e.g. "node 2". */
  label?: string;
}

export class ServerUnderTest {
  private child: ChildProcess | undefined;
  private exitCode: number | string | undefined;

  private constructor(
    readonly target: Target,
    /** Known only for servers we spawned or that were named with --server-pid. */
    readonly pid: number | undefined,
    readonly description: string,
    readonly logPath: string | undefined,
    readonly label?: string | undefined,
  ) {}

  static async start(spec: ServerSpec, opts: StartOptions): Promise<ServerUnderTest> {
    if (spec.kind === 'url') {
      const target = parseTarget(spec.url);
      return new ServerUnderTest(target, spec.pid, `external ${target.origin}`, undefined);
    }
    const port = await freePort();
    const target = parseTarget(`http://127.0.0.1:${port}`);
    let argv: string[];
    let description: string;
    if (spec.kind === 'switchboard') {
      const entry = join(REPO_ROOT, 'dist/src/cli/main.js');
      if (!existsSync(entry)) throw new Error(`${entry} not found: run "npm run build" first`);
      argv = [process.execPath, ...(opts.nodeArgs ?? []), entry];
      description = opts.label ? `switchboard ${opts.label} (spawned)` : 'switchboard (spawned)';
    } else {
      const command = spec.command
        .replaceAll('{port}', String(port))
        .replaceAll('{appId}', opts.creds.appId)
        .replaceAll('{appKey}', opts.creds.key)
        .replaceAll('{appSecret}', opts.creds.secret);
      argv = ['/bin/sh', '-c', command];
      description = `${command} (spawned)`;
    }
    if (opts.pin) argv = ['taskset', '-c', opts.core ?? '0', ...argv];

    // The server writes its log straight to a file: piping it through us
    // would charge the load generator for the server's logging.
    const logPath = join(tmpdir(), `switchboard-bench-server-${port}.log`);
    const logFd = openSync(logPath, 'w');
    const child = spawn(argv[0], argv.slice(1), {
      cwd: REPO_ROOT,
      detached: true, // own process group, so stop() can kill wrappers and children together
      stdio: ['ignore', logFd, logFd],
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        SWITCHBOARD_APP_ID: opts.creds.appId,
        SWITCHBOARD_APP_KEY: opts.creds.key,
        SWITCHBOARD_APP_SECRET: opts.creds.secret,
        ...(opts.token ? { SWITCHBOARD_APP_API_TOKEN: opts.token } : {}),
        ...opts.env,
      },
    });
    closeSync(logFd);
    const sut = new ServerUnderTest(target, child.pid, description, logPath, opts.label);
    sut.child = child;
    child.on('exit', (code, signal) => {
      sut.exitCode = signal ?? code ?? 'unknown';
    });
    liveServers.add(sut);
    try {
      await sut.waitReady(opts.readyPath, opts.startupTimeoutMs);
    } catch (err) {
      await sut.stop();
      throw err;
    }
    return sut;
  }

  private async waitReady(path: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) throw new Error(`${this.name} exited (${this.exitCode}) during startup\n${this.logTail()}`);
      if ((await httpStatus(`${this.target.origin}${path}`)) === 200) return;
      await sleep(100);
    }
    throw new Error(`${this.name} did not answer 200 on GET ${path} within ${timeoutMs} ms\n${this.logTail()}`);
  }

  private get name(): string {
    return this.label ? `server ${this.label}` : 'server';
  }

  logTail(): string {
    if (!this.logPath) return '';
    try {
      return `--- server log (${this.logPath}) ---\n${readFileSync(this.logPath, 'utf8').slice(-2000)}`;
    } catch {
      return '';
    }
  }

  get exited(): boolean {
    return this.exitCode !== undefined;
  }

  sample(): ProcSample | undefined {
    return this.pid === undefined ? undefined : sampleProcessTree(this.pid);
  }

  maxOpenFiles(): number | undefined {
    return this.pid === undefined ? undefined : maxOpenFiles(this.pid);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.pid === undefined) return;
    this.child = undefined;
    liveServers.delete(this);
    if (this.exitCode !== undefined) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    killGroup(child.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(child.pid!, 'SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }

  /** Synchronous, for process 'exit' handlers. */
  killNow(): void {
    if (this.child?.pid !== undefined && this.exitCode === undefined) killGroup(this.child.pid, 'SIGKILL');
  }
}

const liveServers = new Set<ServerUnderTest>();
export function killAllSpawnedServers(): void {
  for (const s of liveServers) s.killNow();
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Pins this process (and children forked later) to one core; returns false if taskset is missing. */
export function pinSelf(core: number): void {
  try {
    execFileSync('taskset', ['-pc', String(core), String(process.pid)], { stdio: 'ignore' });
  } catch {
    throw new Error('--pin needs the taskset command (util-linux)');
  }
}
