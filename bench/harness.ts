// Wires options to a server under test, a fleet of client hosts and a
// publisher, and measures CPU of everyone over a window.

import { availableParallelism } from 'node:os';
import type { GroupStats, OpenResult, OpenSpec } from './client-group.js';
import { sourceAddresses, type Target } from './loopback.js';
import type { Options } from './options.js';
import { BENCH_JWT_SECRET } from './protocol.js';
import { schedSample, schedShares, type SchedSample } from './proc-stats.js';
import { Publisher } from './publisher.js';
import type { AppCredentials } from './pusher-sign.js';
import { prepareAppStore, type BenchAppStore } from './app-store.js';
import { ServerUnderTest, freePort, pinSelf, type ServerSpec } from './server-under-test.js';
import { Histogram } from './stats.js';
import { Fleet, type ForkedHost } from './worker-pool.js';

/** Above this share of one core a load-generator process is itself the bottleneck. */
const SATURATION = 0.9;
const CONNECTIONS_PER_WORKER = 15_000;

export interface Mark {
  atMs: number;
  mainCpu: NodeJS.CpuUsage;
  workers: GroupStats[];
  serverCpuUs: number | undefined;
  serverRssBytes: number | undefined;
  serverSched: SchedSample | undefined;
  mainSched: SchedSample | undefined;
}

export interface ProcessCpu {
  role: 'main' | 'worker';
  pid: number;
  cpuPct: number;
  /** Kernel share: on loopback most per-message cost is the TCP stack, not our JS. */
  sysPct: number;
  /**
   * Share of the window the main thread was runnable without a CPU; of that, roughly how much
   * went to processes outside the benchmark (not to this process's own helper threads, nor to
   * the other benchmark processes that may share its core). null: unknown.
   */
  waitPct: number | null;
  foreignWaitPct: number | null;
}

/** Above this share of the window spent waiting for a CPU, the machine was too busy to trust the numbers. */
const CONTENTION = 0.05;

export interface WindowReport {
  wallMs: number;
  serverCpuUs: number | undefined;
  serverRssBytes: number | undefined;
  /**
   * Share of the window the server's main thread was runnable without a CPU; the share its
   * own helper threads (V8 GC, libuv pool) ran; and roughly what processes outside the
   * benchmark took (see ProcessCpu).
   */
  serverWaitPct: number | undefined;
  serverHelperPct: number | undefined;
  serverForeignWaitPct: number | undefined;
  loadgen: ProcessCpu[];
  workers: GroupStats[];
}

export class Harness {
  readonly warnings: string[] = [];
  /** The database table the server reads its app from (--app-store), if any. */
  appStore: BenchAppStore | undefined;
  readonly creds: AppCredentials;
  private publishers: Publisher[] = [];

  private constructor(
    readonly opts: Options,
    readonly server: ServerUnderTest,
    readonly fleet: Fleet,
    readonly forked: ForkedHost[],
    readonly connections: number,
  ) {
    this.creds = { appId: opts.appId, key: opts.appKey, secret: opts.appSecret };
  }

  /** serverEnv: extra environment for a spawned server (a scenario's needs, e.g. the local adapter). */
  static async create(opts: Options, connections: number, serverEnv?: Record<string, string>): Promise<Harness> {
    if (opts.pin) {
      if (availableParallelism() < 2) throw new Error('--pin needs at least 2 cores');
      pinSelf(1); // before forking, so workers inherit core 1
    }
    const workers = Math.max(opts.workers ?? 1, Math.ceil(connections / CONNECTIONS_PER_WORKER));
    if (opts.workers === 0 && connections > CONNECTIONS_PER_WORKER)
      throw new Error(`--workers 0 cannot hold ${connections} connections in one process (open-file limit)`);
    const spec: ServerSpec = opts.url
      ? { kind: 'url', url: opts.url, pid: opts.serverPid }
      : opts.serverCmd
        ? { kind: 'cmd', command: opts.serverCmd }
        : { kind: 'switchboard' };
    const creds = { appId: opts.appId, key: opts.appKey, secret: opts.appSecret };
    const appStore = opts.appStore === 'config' ? undefined : await prepareAppStore(opts.appStore, opts.appStoreUrl, creds, await freePort());
    if (appStore) serverEnv = { ...appStore.env, ...serverEnv };
    const server = await ServerUnderTest.start(spec, {
      creds,
      pin: opts.pin,
      readyPath: opts.readyPath,
      startupTimeoutMs: opts.startupTimeoutMs,
      token: opts.token,
      nodeArgs: opts.serverNodeArgs,
      ...(serverEnv ? { env: serverEnv } : {}),
    });
    const { fleet, forked } = Fleet.create(opts.workers === 0 ? 0 : workers, opts.workerNodeArgs);
    const h = new Harness(opts, server, fleet, forked, connections);
    h.appStore = appStore;
    if (opts.pin && spec.kind === 'url') h.warnings.push('--pin with --url pins only the load generator');
    const limit = server.maxOpenFiles();
    if (limit !== undefined && connections > limit - 50)
      h.warnings.push(`server open-file limit is ${limit}; ${connections} connections will not fit`);
    return h;
  }

  openSpec(partial: Pick<OpenSpec, 'role' | 'firstIndex' | 'count' | 'channelPrefix' | 'channelCount'> & Partial<OpenSpec>): OpenSpec {
    const hosts = this.fleet.hosts.length;
    return {
      host: this.server.target.host,
      port: this.server.target.port,
      protocol: this.opts.protocol,
      appId: this.opts.appId,
      appKey: this.opts.appKey,
      appSecret: this.opts.appSecret,
      nativePath: this.opts.nativePath,
      sourceAddresses: sourceAddresses(this.server.target.host, this.connections, this.opts.sourceAddrs),
      concurrency: Math.max(1, Math.ceil(this.opts.connectConcurrency / hosts)),
      connectTimeoutMs: this.opts.connectTimeoutMs,
      nativeSettleMs: this.opts.nativeSettleMs,
      recordLatency: false,
      userJwtSecret: this.opts.send ? BENCH_JWT_SECRET : undefined,
      ...partial,
    };
  }

  /** Opens connections over the fleet and folds the per-host results together. */
  async open(spec: OpenSpec): Promise<{ opened: number; failed: number; firstError: string | undefined; handshake: Histogram; elapsedMs: number }> {
    const t0 = Date.now();
    const results: OpenResult[] = await this.fleet.open(spec);
    const handshake = new Histogram();
    let opened = 0;
    let failed = 0;
    let firstError: string | undefined;
    for (const r of results) {
      opened += r.opened;
      failed += r.failed;
      firstError ??= r.firstError;
      handshake.merge(r.handshake);
    }
    if (failed > 0) this.warnings.push(`${failed} of ${spec.count} connections failed: ${firstError}`);
    return { opened, failed, firstError, handshake, elapsedMs: Date.now() - t0 };
  }

  /** A publisher to the server under test, or to `target` (e.g. one node of a cluster). */
  publisher(target: Target = this.server.target): Publisher {
    const p = new Publisher({
      target,
      protocol: this.opts.protocol,
      creds: this.creds,
      token: this.opts.token,
      send: this.opts.send,
      concurrency: this.opts.concurrency,
    });
    this.publishers.push(p);
    return p;
  }

  async mark(): Promise<Mark> {
    const sample = this.server.sample();
    return {
      atMs: performance.now(),
      mainCpu: process.cpuUsage(),
      workers: this.forked.length > 0 ? await this.fleet.stats() : [],
      serverCpuUs: sample?.cpuUs,
      serverRssBytes: sample?.rssBytes,
      serverSched: sample?.sched,
      mainSched: schedSample(process.pid),
    };
  }

  /** Warns when processes outside the benchmark kept one of ours from a CPU for more than CONTENTION of the window. */
  noteContention(who: string, foreignWaitPct: number | undefined | null): void {
    if (foreignWaitPct !== undefined && foreignWaitPct !== null && foreignWaitPct > CONTENTION * 100)
      this.warnings.push(
        `WARNING: processes outside the benchmark kept ${who} from a CPU ~${foreignWaitPct}% of the measured window (a busy machine): throughput is understated and latency overstated`,
      );
  }

  /**
   * CPU of server and load generator between `from` and now. `otherBenchCpuUs`: CPU that other
   * processes of this run used meanwhile (e.g. cluster nodes), so waiting for them is not taken
   * for outside load when they may share a core with ours.
   */
  async window(from: Mark, otherBenchCpuUs = 0): Promise<WindowReport> {
    const to = await this.mark();
    const wallMs = to.atMs - from.atMs;
    const pct = (us: number): number => Math.round((us / 1000 / wallMs) * 1000) / 10;
    const main = process.cpuUsage(from.mainCpu);
    const mainShares = schedShares(from.mainSched, to.mainSched, wallMs);
    const loadgen: ProcessCpu[] = [
      {
        role: 'main',
        pid: process.pid,
        cpuPct: pct(main.user + main.system),
        sysPct: pct(main.system),
        waitPct: mainShares?.waitPct ?? null,
        foreignWaitPct: mainShares?.foreignWaitPct ?? null,
      },
    ];
    for (const w of to.workers) {
      const before = from.workers.find((b) => b.pid === w.pid);
      if (!before) continue;
      const shares = schedShares(before.sched, w.sched, wallMs);
      loadgen.push({
        role: 'worker',
        pid: w.pid,
        cpuPct: pct(w.cpuUserUs + w.cpuSystemUs - before.cpuUserUs - before.cpuSystemUs),
        sysPct: pct(w.cpuSystemUs - before.cpuSystemUs),
        waitPct: shares?.waitPct ?? null,
        foreignWaitPct: shares?.foreignWaitPct ?? null,
      });
    }
    for (const p of loadgen) {
      if (p.cpuPct > SATURATION * 100)
        this.warnings.push(
          `WARNING: load generator ${p.role} (pid ${p.pid}) used ${p.cpuPct}% of a core: results may measure the generator, not the server` +
            (p.role === 'worker' ? ' (try more --workers)' : ' (publisher/orchestrator)'),
        );
    }
    // Waiting for the benchmark's own processes is part of the setup, not outside load: the
    // load generator's processes share core 1 with --pin (and every core with the server
    // without it). Subtracting all CPU they could have taken errs towards fewer warnings.
    const server = schedShares(from.serverSched, to.serverSched, wallMs);
    const serverPct =
      from.serverCpuUs !== undefined && to.serverCpuUs !== undefined ? pct(to.serverCpuUs - from.serverCpuUs) : 0;
    const serverPinnedApart = this.opts.pin && this.opts.url === undefined;
    const loadgenPct = loadgen.reduce((sum, p) => sum + p.cpuPct, 0);
    const clamp = (x: number): number => Math.max(0, Math.round(x * 10) / 10);
    for (const p of loadgen) {
      if (p.foreignWaitPct !== null)
        p.foreignWaitPct = clamp(
          p.foreignWaitPct - (loadgenPct - p.cpuPct) - (serverPinnedApart ? 0 : serverPct + pct(otherBenchCpuUs)),
        );
      this.noteContention(`load generator ${p.role} (pid ${p.pid})`, p.foreignWaitPct);
    }
    if (server) server.foreignWaitPct = clamp(server.foreignWaitPct - (serverPinnedApart ? 0 : loadgenPct));
    this.noteContention('the server', server?.foreignWaitPct);
    const workers = this.forked.length > 0 ? to.workers : await this.fleet.stats();
    return {
      wallMs,
      serverWaitPct: server?.waitPct,
      serverHelperPct: server?.helperPct,
      serverForeignWaitPct: server?.foreignWaitPct,
      serverCpuUs:
        from.serverCpuUs !== undefined && to.serverCpuUs !== undefined ? to.serverCpuUs - from.serverCpuUs : undefined,
      serverRssBytes: to.serverRssBytes,
      loadgen,
      workers,
    };
  }

  /** Current totals over all hosts. */
  async totals(): Promise<{
    delivered: number;
    dropped: number;
    firstDropError: string | undefined;
    memberAdded: number;
    memberRemoved: number;
    latency: Histogram;
    /** Per OpenSpec.tag, over all hosts. */
    byTag: Map<string, { delivered: number; latency: Histogram }>;
  }> {
    const all = await this.fleet.stats();
    const latency = new Histogram();
    const byTag = new Map<string, { delivered: number; latency: Histogram }>();
    let delivered = 0;
    let dropped = 0;
    let memberAdded = 0;
    let memberRemoved = 0;
    let firstDropError: string | undefined;
    for (const s of all) {
      delivered += s.delivered;
      dropped += s.dropped;
      memberAdded += s.memberAdded;
      memberRemoved += s.memberRemoved;
      firstDropError ??= s.firstDropError;
      if (s.latency) latency.merge(s.latency);
      for (const [name, t] of Object.entries(s.byTag)) {
        let acc = byTag.get(name);
        if (!acc) byTag.set(name, (acc = { delivered: 0, latency: new Histogram() }));
        acc.delivered += t.delivered;
        if (t.latency) acc.latency.merge(t.latency);
      }
    }
    return { delivered, dropped, firstDropError, memberAdded, memberRemoved, latency, byTag };
  }

  /** Polls until `done` says so or drainMs passes; returns whether it completed. */
  async drain(done: () => Promise<boolean>): Promise<boolean> {
    const deadline = Date.now() + this.opts.drainMs;
    for (;;) {
      if (await done()) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async dispose(): Promise<void> {
    for (const p of this.publishers) p.close();
    await this.fleet.closeAll();
    await this.fleet.dispose();
    await this.server.stop();
    await this.appStore?.close();
  }

  killNow(): void {
    for (const f of this.forked) f.killNow();
    this.server.killNow();
  }
}
