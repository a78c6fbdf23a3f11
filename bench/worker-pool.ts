// Main-process side of the client workers: forks them and exposes each one as
// a ClientHost, plus a Fleet that spreads connections over all hosts.

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  ClientGroup,
  type ChurnResult,
  type ChurnSpec,
  type ClientHost,
  type GroupStats,
  type OpenResult,
  type OpenSpec,
} from './client-group.js';
import type { RpcRequest, RpcResponse } from './rpc.js';

const WORKER_JS = fileURLToPath(new URL('./worker.js', import.meta.url));
const RPC_TIMEOUT_MS = 120_000;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

// Distributive Omit so each union member keeps its own params.
type RpcCall = RpcRequest extends infer R ? (R extends RpcRequest ? Omit<R, 'id'> : never) : never;

export class ForkedHost implements ClientHost {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private exited = false;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (msg: RpcResponse) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error !== undefined) p.reject(new Error(msg.error));
      else p.resolve(msg.result);
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) {
        clearTimeout(p.timer);
        p.reject(new Error(`worker ${child.pid} exited (${signal ?? code})`));
      }
      this.pending.clear();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private call<T>(req: RpcCall): Promise<T> {
    if (this.exited) return Promise.reject(new Error('worker is gone'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker rpc ${req.method} timed out`));
      }, RPC_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.child.send({ ...req, id });
    });
  }

  open(spec: OpenSpec): Promise<OpenResult> {
    return this.call({ method: 'open', params: spec });
  }
  stats(): Promise<GroupStats> {
    return this.call({ method: 'stats' });
  }
  reset(): Promise<void> {
    return this.call({ method: 'reset' });
  }
  churn(spec: ChurnSpec): Promise<ChurnResult> {
    return this.call({ method: 'churn', params: spec });
  }
  closeAll(): Promise<void> {
    return this.call({ method: 'closeAll' });
  }

  async dispose(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }

  /** Synchronous last resort for process 'exit' handlers. */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}

export function forkWorkers(count: number, execArgv: string[] = []): ForkedHost[] {
  return Array.from(
    { length: count },
    () => new ForkedHost(fork(WORKER_JS, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv })),
  );
}

/** Hosts that hold the subscriber connections: forked workers, or this process when workers = 0. */
export class Fleet {
  constructor(readonly hosts: ClientHost[]) {}

  static create(workers: number, execArgv: string[] = []): { fleet: Fleet; forked: ForkedHost[] } {
    const forked = forkWorkers(workers, execArgv);
    const hosts: ClientHost[] = forked.length > 0 ? forked : [new ClientGroup()];
    return { fleet: new Fleet(hosts), forked };
  }

  /** Splits [firstIndex, firstIndex + count) evenly over the hosts and opens all in parallel. */
  async open(spec: OpenSpec): Promise<OpenResult[]> {
    const n = this.hosts.length;
    const per = Math.floor(spec.count / n);
    const extra = spec.count % n;
    let first = spec.firstIndex;
    const jobs: Promise<OpenResult>[] = [];
    for (let k = 0; k < n; k++) {
      const count = per + (k < extra ? 1 : 0);
      if (count === 0) continue;
      jobs.push(this.hosts[k].open({ ...spec, firstIndex: first, count }));
      first += count;
    }
    return Promise.all(jobs);
  }

  stats(): Promise<GroupStats[]> {
    return Promise.all(this.hosts.map((h) => h.stats()));
  }
  async reset(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.reset()));
  }
  churn(spec: ChurnSpec): Promise<ChurnResult[]> {
    return Promise.all(this.hosts.map((h) => h.churn(spec)));
  }
  async closeAll(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.closeAll().catch(() => undefined)));
  }
  async dispose(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.dispose().catch(() => undefined)));
  }
}
