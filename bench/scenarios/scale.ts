// scale: does a node's cost stay flat as the cluster grows? For each routing (broadcast,
// interest) and each cluster size 1, 2, 4 … --nodes, every node carries the same load: --subs
// connections, each on its own channel (per-user channels), and --rate REST events/s published
// through it to random users anywhere in the cluster (a load balancer does not know where a
// user's socket is). Reports per node CPU per delivered message, engine messages per published
// event (from the nodes' own counters) and what one subscription change on node 1 costs each
// other node.

import { randomBytes } from 'node:crypto';
import { readCounter } from '../app-store.js';
import type { Harness } from '../harness.js';
import type { Options } from '../options.js';
import { pidListeningOn } from '../proc-stats.js';
import { makePayload, nowUs } from '../protocol.js';
import { fmt, num, type Row } from '../report.js';
import { freePort, type ServerUnderTest } from '../server-under-test.js';
import { summarizeUsAsMs } from '../stats.js';
import { engineCpuUs, engineDescription, engineEnv, enginePorts, nodeCores, startNodes } from './cross-node.js';
import type { Scenario } from './types.js';

const DEFAULT_SUBS_PER_NODE = 300;
const DEFAULT_RATE_PER_NODE = 50;
const CHANNEL = 'scale-user';
const CHURN_CHANNEL = 'scale-churn';
const IN_COUNTER = 'switchboard_cluster_channel_messages_in_total';
/** After the last churn close: long enough for the nodes' coalesced announcements to land. */
const CHURN_SETTLE_MS = 1_000;

type Routing = 'broadcast' | 'interest';

interface Point {
  routing: Routing;
  nodes: number;
  published: number;
  delivered: number;
  complete: boolean;
  /** Per node: CPU µs / messages delivered to its own subscribers. */
  cpuUsPerDelivered: Array<number | undefined>;
  /** Σ channel messages the engine handed to nodes ÷ published events. */
  engineMessagesPerEvent: number | undefined;
  engineCpuUsPerEvent: number | undefined;
  /** CPU µs a node other than node 1 spent per subscription change on node 1, net of idle. */
  remoteChurnUs: number | undefined;
  latencyMs: ReturnType<typeof summarizeUsAsMs>;
}

const show = (n: number | undefined, digits: number): string => fmt(n, digits) ?? 'n/a';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** 1, 2, 4 … up to and including max. */
function sizes(max: number): number[] {
  const out: number[] = [];
  for (let n = 1; n < max; n *= 2) out.push(n);
  out.push(max);
  return [...new Set(out)];
}

async function sumCounters(ports: number[]): Promise<number> {
  const values = await Promise.all(ports.map((p) => readCounter(p, IN_COUNTER)));
  return values.reduce((a, b) => a + b, 0);
}

function cpuOf(servers: ServerUnderTest[]): Array<number | undefined> {
  return servers.map((s) => s.sample()?.cpuUs);
}

async function measure(h: Harness, routing: Routing, count: number, enginePids: number[]): Promise<Point> {
  const o = h.opts;
  const subsPerNode = o.subs ?? DEFAULT_SUBS_PER_NODE;
  const ratePerNode = o.rate ?? DEFAULT_RATE_PER_NODE;
  const users = subsPerNode * count;
  const prefix = `bench-scale-${randomBytes(4).toString('hex')}`;
  const layout = nodeCores(count);
  const metricsPorts: number[] = [];
  for (let i = 0; i < count; i++) metricsPorts.push(await freePort());
  const servers: ServerUnderTest[] = [];
  try {
    const env = (i: number) => ({ ...engineEnv(o, prefix), SWITCHBOARD_CLUSTER_ROUTING: routing, SWITCHBOARD_METRICS_PORT: String(metricsPorts[i]) });
    await startNodes(h, layout.cores, servers, env, (i) => `${routing} node ${i + 1}/${count}`);

    for (let i = 0; i < count; i++) {
      const r = await h.open(
        h.openSpec({
          role: 'sub',
          firstIndex: i * subsPerNode,
          count: subsPerNode,
          channelPrefix: CHANNEL,
          channelCount: users,
          recordLatency: true,
          host: servers[i].target.host,
          port: servers[i].target.port,
          tag: `n${i}`,
        }),
      );
      if (r.failed > 0) throw new Error(`node ${i + 1}: ${r.failed} subscribers failed: ${r.firstError}`);
    }

    // Probe: node 1 reaches the last user of every node, so the cluster is formed (and, with
    // interest routing, every node's shards are live) before anything is measured.
    await h.fleet.reset();
    const probe = h.publisher(servers[0].target);
    const probes = Array.from({ length: count }, (_, i) => ({ channel: `${CHANNEL}-${(i + 1) * subsPerNode - 1}`, data: makePayload(o.payloadBytes, nowUs()) }));
    if (!(await probe.send(probes))) throw new Error(`probe publish failed: ${probe.stats.firstError}`);
    const probeDone = await h.drain(async () => (await h.totals()).delivered >= count);
    probe.close();
    if (!probeDone) throw new Error(`the probe reached ${(await h.totals()).delivered} of ${count} nodes: cross-node delivery is not working`);
    await h.fleet.reset();

    // Publishing: every node at the same rate, to random users of the whole cluster.
    const next = () => [{ channel: `${CHANNEL}-${Math.floor(Math.random() * users)}`, data: makePayload(o.payloadBytes, nowUs()) }];
    const publishers = servers.map((s) => h.publisher(s.target));
    const cpuBefore = cpuOf(servers);
    const engineBefore = engineCpuUs(enginePids);
    const inBefore = await sumCounters(metricsPorts);
    await Promise.all(publishers.map((p) => p.runFixedRate({ rate: ratePerNode, durationMs: o.durationS * 1000, maxEvents: o.maxMessages, next })));
    const published = publishers.reduce((sum, p) => sum + p.stats.events, 0);
    const complete = await h.drain(async () => (await h.totals()).delivered >= published);
    const cpuAfter = cpuOf(servers);
    const engineAfter = engineCpuUs(enginePids);
    const inAfter = await sumCounters(metricsPorts);
    for (const p of publishers) p.close();
    const totals = await h.totals();
    const cpuUsPerDelivered = servers.map((_, i) => {
      const a = cpuAfter[i];
      const b = cpuBefore[i];
      const delivered = totals.byTag.get(`n${i}`)?.delivered ?? 0;
      return a === undefined || b === undefined || delivered === 0 ? undefined : (a - b) / delivered;
    });
    await h.fleet.closeAll();

    // Churn: the other nodes' CPU while node 1's clients subscribe to and leave fresh channels,
    // less their CPU over as long a quiet stretch (heartbeats).
    let remoteChurnUs: number | undefined;
    if (count > 1 && o.churn > 0) {
      await sleep(CHURN_SETTLE_MS);
      const others = servers.slice(1);
      const quiet0 = cpuOf(others);
      const tq = performance.now();
      await sleep(CHURN_SETTLE_MS);
      const quiet1 = cpuOf(others);
      const quietMs = performance.now() - tq;
      const churn0 = cpuOf(others);
      const tc = performance.now();
      const opened = await h.open(
        h.openSpec({ role: 'sub', firstIndex: 0, count: o.churn, channelPrefix: CHURN_CHANNEL, channelCount: o.churn, host: servers[0].target.host, port: servers[0].target.port }),
      );
      await h.fleet.closeAll();
      await sleep(CHURN_SETTLE_MS);
      const churn1 = cpuOf(others);
      const churnMs = performance.now() - tc;
      const per = others.map((_, i) => {
        const [q0, q1, c0, c1] = [quiet0[i], quiet1[i], churn0[i], churn1[i]];
        if (q0 === undefined || q1 === undefined || c0 === undefined || c1 === undefined) return undefined;
        return (c1 - c0 - ((q1 - q0) * churnMs) / quietMs) / (2 * opened.opened);
      });
      const known = per.filter((x): x is number => x !== undefined);
      remoteChurnUs = known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0) / known.length;
    }

    return {
      routing,
      nodes: count,
      published,
      delivered: totals.delivered,
      complete: complete && totals.delivered === published,
      cpuUsPerDelivered,
      engineMessagesPerEvent: Number.isNaN(inAfter - inBefore) || published === 0 ? undefined : (inAfter - inBefore) / published,
      engineCpuUsPerEvent: engineBefore === undefined || engineAfter === undefined || published === 0 ? undefined : (engineAfter - engineBefore) / published,
      remoteChurnUs,
      latencyMs: summarizeUsAsMs(totals.latency),
    };
  } finally {
    await h.fleet.closeAll().catch(() => undefined);
    await Promise.all(servers.map((s) => s.stop()));
  }
}

function meanOf(xs: Array<number | undefined>): number | undefined {
  const known = xs.filter((x): x is number => x !== undefined);
  return known.length === 0 ? undefined : known.reduce((a, b) => a + b, 0) / known.length;
}

export const scale: Scenario = {
  name: 'scale',
  summary: 'per-node cost as the cluster grows: 1, 2, 4 … nodes, each with the same per-user channel load, per routing',
  connections: (o: Options) => (o.subs ?? DEFAULT_SUBS_PER_NODE) * Math.floor(o.nodes) + o.churn,
  serverEnv: () => ({ SWITCHBOARD_ADAPTER: 'local' }),
  async run(h) {
    const o = h.opts;
    const enginePids = enginePorts(o)
      .map((p) => pidListeningOn(p))
      .filter((p): p is number => p !== undefined);
    const points: Point[] = [];
    for (const routing of o.routings) for (const n of sizes(Math.floor(o.nodes))) points.push(await measure(h, routing, n, enginePids));

    const rows: Row[] = [
      ['engine', `${o.adapter} (${engineDescription(o)})`],
      ['load per node', `${o.subs ?? DEFAULT_SUBS_PER_NODE} connections, one channel each; ${o.rate ?? DEFAULT_RATE_PER_NODE} REST events/s to random users of the cluster; ${o.durationS} s`],
      ['pinning', o.pin ? 'load generator on core 1; nodes share core 0 when there are fewer cores than nodes + 1' : 'not pinned'],
    ];
    const single = new Map<Routing, number | undefined>();
    for (const p of points) {
      const mean = meanOf(p.cpuUsPerDelivered);
      if (p.nodes === 1) single.set(p.routing, mean);
      const base = single.get(p.routing);
      rows.push([
        `${p.routing}, ${p.nodes} node(s)`,
        [
          `node CPU µs/delivered ${p.cpuUsPerDelivered.map((x) => show(x, 1)).join(' ')} (mean ${show(mean, 1)}${base && mean ? `, ${show((mean / base) * 100, 0)} % of 1 node` : ''})`,
          `engine msgs/event ${show(p.engineMessagesPerEvent, 2)}`,
          `engine CPU µs/event ${show(p.engineCpuUsPerEvent, 1)}`,
          `remote CPU µs/subscription change ${show(p.remoteChurnUs, 1)}`,
          `delivered ${p.delivered}/${p.published}`,
          `p50/p99 ms ${p.latencyMs.p50}/${p.latencyMs.p99}`,
        ].join('; '),
      ]);
    }
    h.warnings.push('a shared, loaded machine: all nodes, the engine and the load generator share its cores; read the trend, not the absolute numbers');
    return {
      ok: points.every((p) => p.complete),
      window: undefined,
      rows,
      json: {
        adapter: o.adapter,
        subsPerNode: o.subs ?? DEFAULT_SUBS_PER_NODE,
        ratePerNode: o.rate ?? DEFAULT_RATE_PER_NODE,
        points: points.map((p) => ({
          routing: p.routing,
          nodes: p.nodes,
          published: p.published,
          delivered: p.delivered,
          complete: p.complete,
          cpuUsPerDelivered: p.cpuUsPerDelivered.map((x) => num(x, 2) ?? null),
          engineMessagesPerEvent: num(p.engineMessagesPerEvent, 3) ?? null,
          engineCpuUsPerEvent: num(p.engineCpuUsPerEvent, 1) ?? null,
          remoteChurnUsPerChange: num(p.remoteChurnUs, 2) ?? null,
          latencyMs: p.latencyMs,
        })),
      },
    };
  },
};
