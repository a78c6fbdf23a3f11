// cross-node: N Switchboard nodes on one engine (Redis, NATS, Redis Cluster), subscribers
// split evenly over them, every event published through node 1. In the same run, a
// single-node reference (the harness's own server, local adapter) with the same total
// subscribers at the same publish rate, so "per node" can be put against "single node".

import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { Harness, WindowReport } from '../harness.js';
import type { Options } from '../options.js';
import { pidListeningOn, sampleProcessTree, schedShares } from '../proc-stats.js';
import { makePayload, nowUs } from '../protocol.js';
import type { PublisherStats } from '../publisher.js';
import { fmt, num, pct, type Row } from '../report.js';
import { ServerUnderTest } from '../server-under-test.js';
import { Histogram, summarizeUsAsMs, type PercentileSummary } from '../stats.js';
import type { Scenario } from './types.js';

const CHANNEL = 'bench-xnode';
const PROBE_TIMEOUT_MS = 10_000;
/** Without --rate: a max-rate pilot this long finds what the cluster accepts... */
const PILOT_MS = 2_000;
/**
 * ...and both measured phases publish at this share of it, evenly spaced. Evenly spaced events
 * coalesce less than a max-rate burst (one socket write per event per subscriber), so half of
 * the pilot's rate still kept a single node at 98 % of a core here; at a quarter the
 * latencies are the fan-out's, not a queue's.
 */
const PILOT_SHARE = 0.25;

/**
 * How a phase publishes. Both phases use the same fixed rate: a max-rate phase would be
 * burstier than a fixed-rate one, and bursts coalesce more frames into each socket write,
 * so their CPU per message would not be comparable.
 */
type RatePlan = { fixed: number } | { pilot: true };

interface PilotResult {
  publishRate: number;
  deliveredPerSecond: number;
  complete: boolean;
}

interface NodePlan {
  label: string;
  server: ServerUnderTest;
  tag: string;
  subs: number;
}

interface NodeResult {
  label: string;
  subscribers: number;
  delivered: number;
  deliveredPerSecond: number;
  latency: PercentileSummary;
  cpuUs: number | undefined;
  cpuPctOfCore: number | undefined;
  cpuUsPerDelivered: number | undefined;
  rssBytes: number | undefined;
  /** Share of the window the node's main thread waited for a CPU (its helpers, other nodes, other processes). */
  waitPct: number | undefined;
  /** ... of which not explained by its own helper threads (other nodes on a shared core, other processes). */
  foreignWaitPct: number | undefined;
}

interface PhaseResult {
  /** The fixed rate the measured part published at. */
  rate: number;
  pilot: PilotResult | undefined;
  opened: number;
  failed: number;
  firstError: string | undefined;
  published: number;
  publishMs: number;
  expected: number;
  delivered: number;
  complete: boolean;
  deliveryMs: number;
  dropped: number;
  firstDropError: string | undefined;
  nodes: NodeResult[];
  latency: Histogram;
  /** Latency of subscribers on nodes other than node 1 (cross-node deliveries). */
  remoteLatency: Histogram;
  publisher: PublisherStats;
  window: WindowReport;
  engineCpuUs: number | undefined;
}

export function engineEnv(o: Options, prefix: string): Record<string, string> {
  const env: Record<string, string> = { SWITCHBOARD_ADAPTER: o.adapter, SWITCHBOARD_CLUSTER_PREFIX: prefix };
  if (o.adapter === 'redis') env.SWITCHBOARD_REDIS_URL = o.redisUrl;
  if (o.adapter === 'nats') env.SWITCHBOARD_NATS_URL = o.natsUrl;
  if (o.adapter === 'redis-cluster') env.SWITCHBOARD_REDIS_CLUSTER_NODES = o.redisClusterNodes ?? '';
  return env;
}

export function engineDescription(o: Options): string {
  return o.adapter === 'redis' ? o.redisUrl : o.adapter === 'nats' ? o.natsUrl : `redis-cluster ${o.redisClusterNodes}`;
}

/** Ports of the engine processes on this machine, to report their CPU beside the nodes'. */
export function enginePorts(o: Options): number[] {
  const urls =
    o.adapter === 'redis'
      ? [o.redisUrl]
      : o.adapter === 'nats'
        ? o.natsUrl.split(',')
        : (o.redisClusterNodes ?? '').split(',').map((hp) => `redis://${hp}`);
  const ports = urls.map((u) => {
    const url = new URL(u.trim());
    return Number(url.port || (url.protocol === 'nats:' ? 4222 : 6379));
  });
  return [...new Set(ports)];
}

export function engineCpuUs(pids: number[]): number | undefined {
  if (pids.length === 0) return undefined;
  let sum = 0;
  for (const pid of pids) {
    const s = sampleProcessTree(pid);
    if (!s) return undefined;
    sum += s.cpuUs;
  }
  return sum;
}

/**
 * Where the Switchboard processes run with --pin. The load generator is on core 1 (Harness).
 * With enough cores each node gets its own; otherwise (2 cores) they all share core 0.
 */
export function nodeCores(nodes: number): { cores: string[]; shared: boolean } {
  const n = availableParallelism();
  if (n >= nodes + 1) return { cores: Array.from({ length: nodes }, (_, i) => String(i === 0 ? 0 : i + 1)), shared: false };
  return { cores: Array.from({ length: nodes }, () => '0'), shared: true };
}

/**
 * Starts one Switchboard per core entry into `servers` (so the caller stops those that did start
 * even when another failed), then throws the first failure.
 */
export async function startNodes(h: Harness, cores: string[], servers: ServerUnderTest[], env: (i: number) => Record<string, string>, label: (i: number) => string): Promise<void> {
  const o = h.opts;
  const started = await Promise.allSettled(
    cores.map((core, i) =>
      ServerUnderTest.start(
        { kind: 'switchboard' },
        { creds: h.creds, pin: o.pin, core, readyPath: '/ready', startupTimeoutMs: o.startupTimeoutMs, token: o.token, env: env(i), nodeArgs: o.serverNodeArgs, label: label(i) },
      ),
    ),
  );
  for (const s of started) if (s.status === 'fulfilled') servers.push(s.value);
  const failedStart = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failedStart) throw failedStart.reason as Error;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function runPhase(h: Harness, nodes: NodePlan[], plan: RatePlan, enginePids: number[]): Promise<PhaseResult> {
  const { opts } = h;
  let first = 0;
  let opened = 0;
  let failed = 0;
  let firstError: string | undefined;
  for (const n of nodes) {
    const r = await h.open(
      h.openSpec({
        role: 'sub',
        firstIndex: first,
        count: n.subs,
        channelPrefix: CHANNEL,
        channelCount: 1,
        recordLatency: true,
        host: n.server.target.host,
        port: n.server.target.port,
        tag: n.tag,
      }),
    );
    first += n.subs;
    opened += r.opened;
    failed += r.failed;
    firstError ??= r.firstError;
  }
  if (opened === 0) throw new Error(`no subscriber could connect: ${firstError}`);
  const publishTo = nodes[0].server.target;

  // Probe: one event through node 1 must reach every subscriber on every node before we
  // measure (the cluster is formed and routing works); it also warms up the whole path.
  await h.fleet.reset();
  const probe = h.publisher(publishTo);
  if (!(await probe.send([{ channel: CHANNEL, data: makePayload(opts.payloadBytes, nowUs()) }])))
    throw new Error(`probe publish to ${nodes[0].label} failed: ${probe.stats.firstError}`);
  const probeDeadline = Date.now() + PROBE_TIMEOUT_MS;
  for (;;) {
    const t = await h.totals();
    if (t.delivered >= opened) break;
    if (Date.now() >= probeDeadline) {
      const per = nodes.map((n) => `${n.label} ${t.byTag.get(n.tag)?.delivered ?? 0}/${n.subs}`).join(', ');
      throw new Error(`probe event reached ${t.delivered} of ${opened} subscribers within ${PROBE_TIMEOUT_MS} ms (${per}): cross-node delivery is not working`);
    }
    await sleep(20);
  }
  probe.close();
  await h.fleet.reset();
  const dropped0 = (await h.totals()).dropped;
  const next = () => [{ channel: CHANNEL, data: makePayload(opts.payloadBytes, nowUs()) }];
  const durationMs = opts.durationS * 1000;

  let rate: number;
  let pilot: PilotResult | undefined;
  if ('pilot' in plan) {
    const pp = h.publisher(publishTo);
    const tp = performance.now();
    await pp.runMaxRate({ durationMs: Math.min(PILOT_MS, durationMs), maxEvents: opts.maxMessages, next });
    const pilotPublishMs = performance.now() - tp;
    const want = pp.stats.events * opened;
    let doneAt = performance.now();
    const complete = await h.drain(async () => {
      const t = await h.totals();
      doneAt = performance.now();
      return t.delivered >= want;
    });
    pp.close();
    pilot = {
      publishRate: pp.stats.events / (pilotPublishMs / 1000),
      deliveredPerSecond: want / ((doneAt - tp) / 1000),
      complete,
    };
    if (!complete) throw new Error(`max-rate pilot: deliveries did not complete within --drain-ms ${opts.drainMs}`);
    rate = Math.max(1, Math.floor(pilot.publishRate * PILOT_SHARE));
    await h.fleet.reset();
  } else {
    rate = plan.fixed;
  }

  const pub = h.publisher(publishTo);
  const nodeBefore = nodes.map((n) => n.server.sample());
  const engineBefore = engineCpuUs(enginePids);
  const start = await h.mark();
  const t0 = performance.now();
  await pub.runFixedRate({ rate, durationMs, maxEvents: opts.maxMessages, next });
  const publishMs = performance.now() - t0;
  const published = pub.stats.events;
  const expected = published * opened;

  let doneAt = performance.now();
  const complete = await h.drain(async () => {
    const t = await h.totals();
    doneAt = performance.now();
    return t.delivered >= expected;
  });
  const deliveryMs = doneAt - t0;
  const nodeAfter = nodes.map((n) => n.server.sample());
  const engineAfter = engineCpuUs(enginePids);
  // The harness's own server is one of `nodes` in the single-node phase: count it once.
  const nodesCpuUs = nodes.reduce((sum, n, i) => {
    const a = nodeAfter[i];
    const b = nodeBefore[i];
    return n.server === h.server || !a || !b ? sum : sum + a.cpuUs - b.cpuUs;
  }, 0);
  const window = await h.window(start, nodesCpuUs + (engineBefore !== undefined && engineAfter !== undefined ? engineAfter - engineBefore : 0));
  const totals = await h.totals();

  const remoteLatency = new Histogram();
  const results: NodeResult[] = nodes.map((n, i) => {
    const t = totals.byTag.get(n.tag) ?? { delivered: 0, latency: new Histogram() };
    if (i > 0) remoteLatency.merge(t.latency.toJSON());
    const b = nodeBefore[i];
    const a = nodeAfter[i];
    const cpuUs = a && b ? a.cpuUs - b.cpuUs : undefined;
    const shares = schedShares(b?.sched, a?.sched, window.wallMs);
    return {
      label: n.label,
      subscribers: n.subs,
      delivered: t.delivered,
      deliveredPerSecond: t.delivered / (deliveryMs / 1000),
      latency: summarizeUsAsMs(t.latency),
      cpuUs,
      cpuPctOfCore: cpuUs === undefined ? undefined : (cpuUs / 1000 / window.wallMs) * 100,
      cpuUsPerDelivered: cpuUs === undefined || t.delivered === 0 ? undefined : cpuUs / t.delivered,
      rssBytes: a?.rssBytes,
      waitPct: shares?.waitPct,
      foreignWaitPct: shares?.foreignWaitPct,
    };
  });
  await h.fleet.closeAll();
  pub.close();
  return {
    rate,
    pilot,
    opened,
    failed,
    firstError,
    published,
    publishMs,
    expected,
    delivered: totals.delivered,
    complete,
    deliveryMs,
    dropped: totals.dropped - dropped0,
    firstDropError: totals.firstDropError,
    nodes: results,
    latency: totals.latency,
    remoteLatency,
    publisher: pub.stats,
    window,
    engineCpuUs: engineBefore !== undefined && engineAfter !== undefined ? engineAfter - engineBefore : undefined,
  };
}

function phaseOk(p: PhaseResult): boolean {
  return p.complete && p.delivered === p.expected && p.failed === 0 && p.dropped === 0 && p.publisher.failedRequests === 0;
}

const ms = (s: PercentileSummary): string => `${s.p50} / ${s.p99}`;

export const crossNode: Scenario = {
  name: 'cross-node',
  summary: 'N nodes on a cluster engine, publish through node 1; per-node fan-out against a single node',
  connections: (o) => o.subs ?? 1000,
  // The harness's own server is the single-node reference: force the local adapter even if
  // the caller's environment names another.
  serverEnv: () => ({ SWITCHBOARD_ADAPTER: 'local' }),
  async run(h) {
    const o = h.opts;
    const subs = o.subs ?? 1000;
    const nodeCount = Math.floor(o.nodes);
    if (subs < nodeCount) throw new Error(`--subs ${subs} is fewer than --nodes ${nodeCount}`);
    const prefix = `bench-${randomBytes(4).toString('hex')}`;
    const layout = nodeCores(nodeCount);
    const pinning = o.pin
      ? layout.shared
        ? `load generator on core 1; the ${nodeCount} nodes SHARE core 0 (as does the single-node reference, alone); the engine is not pinned`
        : `load generator on core 1; nodes on cores ${layout.cores.join(', ')}; single-node reference on core 0; the engine is not pinned`
      : 'not pinned';
    const enginePids = enginePorts(o)
      .map((p) => pidListeningOn(p))
      .filter((p): p is number => p !== undefined);

    // Phase 1: the cluster.
    const servers: ServerUnderTest[] = [];
    let cross: PhaseResult;
    try {
      await startNodes(h, layout.cores, servers, () => engineEnv(o, prefix), (i) => `node ${i + 1}`);
      const per = Math.floor(subs / nodeCount);
      const extra = subs % nodeCount;
      const plan: NodePlan[] = servers.map((server, i) => ({
        label: `node ${i + 1}`,
        server,
        tag: `node${i + 1}`,
        subs: per + (i < extra ? 1 : 0),
      }));
      cross = await runPhase(h, plan, o.rate === undefined ? { pilot: true } : { fixed: o.rate }, enginePids);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }

    // Phase 2: one node, local adapter, same subscribers, same publish rate.
    const refRate = cross.rate;
    const single = await runPhase(h, [{ label: 'single node', server: h.server, tag: 'single', subs }], { fixed: refRate }, []);
    for (const [name, p] of [['cluster', cross], ['single-node reference', single]] as const)
      if (p.publisher.lateTicks > 0)
        h.warnings.push(`${name}: the publisher missed its schedule on ${p.publisher.lateTicks} ticks (all ${o.concurrency} requests in flight): the rate is more than the server takes`);

    // Per node, as a share of the single node: deliveries per CPU-second, i.e. single-node
    // CPU µs per delivered message ÷ this node's. This is what a node could deliver on a core
    // of its own relative to the single node, whatever the nodes had to share here.
    const ref = single.nodes[0].cpuUsPerDelivered;
    const perNodePct = cross.nodes.map((n) => (ref !== undefined && n.cpuUsPerDelivered ? (ref / n.cpuUsPerDelivered) * 100 : undefined));
    const known = perNodePct.filter((x): x is number => x !== undefined);
    const minPct = known.length === cross.nodes.length ? Math.min(...known) : undefined;
    const clusterCpu = cross.nodes.every((n) => n.cpuUs !== undefined) ? cross.nodes.reduce((s, n) => s + n.cpuUs!, 0) : undefined;
    const clusterPerMsg = clusterCpu === undefined || cross.delivered === 0 ? undefined : clusterCpu / cross.delivered;

    const lat = summarizeUsAsMs(cross.latency);
    const local = cross.nodes[0].latency;
    const remote = summarizeUsAsMs(cross.remoteLatency);
    const singleLat = single.nodes[0].latency;
    const ratio = pct(cross.delivered, cross.expected);
    const refRatio = pct(single.delivered, single.expected);
    const mode =
      cross.pilot === undefined
        ? `${cross.rate}/s (--rate)`
        : `${cross.rate}/s = ${PILOT_SHARE * 100}% of what a ${PILOT_MS / 1000} s max-rate pilot reached`;
    const loadgenCell = (w: WindowReport): string =>
      w.loadgen.map((p) => `${p.role} ${p.cpuPct}% [waited ${p.waitPct ?? 'n/a'}%, outside load ~${p.foreignWaitPct ?? 'n/a'}%]`).join(', ');

    const rows: Row[] = [
      ['nodes', `${nodeCount} × switchboard, adapter ${o.adapter} (${engineDescription(o)}), prefix ${prefix}`],
      ['pinning', pinning],
      ['subscribers', `${cross.opened} (${cross.nodes.map((n) => n.subscribers).join(' + ')}; ${cross.failed} failed), one channel`],
      ['publish', `REST through node 1, ${mode}, evenly spaced, keep-alive`],
      [
        'max-rate pilot: events/s, delivered msgs/s',
        cross.pilot === undefined ? 'not run (--rate given)' : `${fmt(cross.pilot.publishRate)}, ${fmt(cross.pilot.deliveredPerSecond, 0)} (${o.concurrency} in flight)`,
      ],
      ['published events', `${cross.published} (${cross.publisher.failedRequests} failed requests)`],
      ['publish rate (events/s)', fmt(cross.published / (cross.publishMs / 1000))],
      ['delivered / expected', `${cross.delivered} / ${cross.expected} (${ratio} %)`],
      ['delivered msgs/s, all nodes', fmt(cross.delivered / (cross.deliveryMs / 1000), 0)],
    ];
    cross.nodes.forEach((n, i) => {
      rows.push(
        [`${n.label}: delivered msgs/s`, fmt(n.deliveredPerSecond, 0)],
        [`${n.label}: latency p50 / p99 ms`, ms(n.latency)],
        [`${n.label}: CPU µs / delivered msg`, fmt(n.cpuUsPerDelivered, 3)],
        [`${n.label}: CPU % of a core [waited %, not for own threads ~%]`, `${fmt(n.cpuPctOfCore)} [${n.waitPct ?? 'n/a'}, ${n.foreignWaitPct ?? 'n/a'}]`],
        [`${n.label}: RSS MB`, n.rssBytes === undefined ? undefined : fmt(n.rssBytes / 2 ** 20)],
        [`${n.label}: fan-out per CPU, % of single node`, fmt(perNodePct[i], 1)],
      );
    });
    rows.push(
      ['latency p50 / p99 ms: node 1 (local)', ms(local)],
      ['latency p50 / p99 ms: other nodes (via engine)', ms(remote)],
      ['latency p50 / p99 / max ms: all', `${lat.p50} / ${lat.p99} / ${lat.max}`],
      ['cluster CPU µs / delivered msg (all nodes)', fmt(clusterPerMsg, 3)],
      ['engine CPU µs / published event', cross.engineCpuUs === undefined || cross.published === 0 ? undefined : fmt(cross.engineCpuUs / cross.published, 1)],
      ['load-gen CPU % (cluster phase)', loadgenCell(cross.window)],
      ['single node: subscribers', `${single.opened} (${single.failed} failed)`],
      ['single node: publish rate (events/s)', `${fmt(single.published / (single.publishMs / 1000))} (target ${fmt(refRate)})`],
      ['single node: delivered / expected', `${single.delivered} / ${single.expected} (${refRatio} %)`],
      ['single node: delivered msgs/s', fmt(single.delivered / (single.deliveryMs / 1000), 0)],
      ['single node: latency p50 / p99 ms', ms(singleLat)],
      ['single node: CPU µs / delivered msg', fmt(ref, 3)],
      [
        'single node: CPU % of a core [waited %, not for own threads ~%]',
        `${fmt(single.nodes[0].cpuPctOfCore)} [${single.nodes[0].waitPct ?? 'n/a'}, ${single.nodes[0].foreignWaitPct ?? 'n/a'}]`,
      ],
      ['load-gen CPU % (single-node phase)', loadgenCell(single.window)],
      [
        'cross-node fan-out per node, % of single-node',
        minPct === undefined ? undefined : `${fmt(minPct, 1)} % (lowest node; = single-node CPU µs/msg ÷ node CPU µs/msg)`,
      ],
    );
    // Nodes sharing a core wait for each other by design, so only unshared nodes are checked
    // here, net of what the run's other processes (nodes, engine, and the load generator when
    // not pinned apart) may have taken; the single node was checked by h.window().
    if (!(o.pin && layout.shared)) {
      const loadgenPct = cross.window.loadgen.reduce((sum, p) => sum + p.cpuPct, 0);
      const enginePct = cross.engineCpuUs === undefined ? 0 : (cross.engineCpuUs / 1000 / cross.window.wallMs) * 100;
      for (const n of cross.nodes) {
        if (n.foreignWaitPct === undefined) continue;
        const others = cross.nodes.reduce((sum, m) => (m === n ? sum : sum + (m.cpuPctOfCore ?? 0)), 0);
        const outside = n.foreignWaitPct - others - enginePct - (o.pin ? 0 : loadgenPct);
        h.noteContention(n.label, Math.max(0, Math.round(outside * 10) / 10));
      }
    }
    if (o.pin && layout.shared)
      h.warnings.push(`the ${nodeCount} nodes shared core 0: compare per-CPU figures (µs/msg, % of single node), not raw msgs/s per node`);
    if (cross.dropped > 0 || single.dropped > 0) h.warnings.push(`connections dropped: ${cross.dropped} (cluster), ${single.dropped} (single): ${cross.firstDropError ?? single.firstDropError}`);
    if (cross.publisher.failedRequests > 0) h.warnings.push(`publish failures: ${cross.publisher.firstError}`);

    const nodeJson = (n: NodeResult) => ({
      label: n.label,
      subscribers: n.subscribers,
      delivered: n.delivered,
      deliveredPerSecond: num(n.deliveredPerSecond, 0),
      latencyMs: n.latency,
      cpuSeconds: n.cpuUs === undefined ? null : num(n.cpuUs / 1e6, 3),
      cpuPctOfCore: num(n.cpuPctOfCore) ?? null,
      cpuUsPerDelivered: num(n.cpuUsPerDelivered, 4) ?? null,
      rssBytes: n.rssBytes ?? null,
      waitPct: n.waitPct ?? null,
      foreignWaitPct: n.foreignWaitPct ?? null,
    });
    const phaseJson = (p: PhaseResult) => ({
      subscribers: p.opened,
      failedConnections: p.failed,
      published: p.published,
      failedRequests: p.publisher.failedRequests,
      publishRate: num(p.published / (p.publishMs / 1000)),
      expected: p.expected,
      delivered: p.delivered,
      deliveryRatioPct: pct(p.delivered, p.expected),
      deliveredPerSecond: num(p.delivered / (p.deliveryMs / 1000), 0),
      dropped: p.dropped,
      latencyMs: summarizeUsAsMs(p.latency),
      nodes: p.nodes.map(nodeJson),
      windowSeconds: num(p.window.wallMs / 1000, 3),
      loadgen: p.window.loadgen,
    });
    return {
      ok: phaseOk(cross) && phaseOk(single),
      window: cross.window,
      rows,
      json: {
        nodes: nodeCount,
        adapter: o.adapter,
        engine: engineDescription(o),
        clusterPrefix: prefix,
        pinning,
        nodesShareCore: o.pin && layout.shared,
        publishRate: cross.rate,
        rateFrom: cross.pilot === undefined ? 'option' : 'pilot',
        pilot: cross.pilot === undefined ? null : { publishRate: num(cross.pilot.publishRate), deliveredPerSecond: num(cross.pilot.deliveredPerSecond, 0) },
        cluster: {
          ...phaseJson(cross),
          latencyLocalMs: local,
          latencyRemoteMs: remote,
          clusterCpuUsPerDelivered: num(clusterPerMsg, 4) ?? null,
          engineCpuSeconds: cross.engineCpuUs === undefined ? null : num(cross.engineCpuUs / 1e6, 3),
        },
        single: phaseJson(single),
        perNodePctOfSingle: perNodePct.map((x) => num(x, 1) ?? null),
        minPerNodePctOfSingle: num(minPct, 1) ?? null,
      },
    };
  },
};
