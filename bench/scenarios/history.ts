// history: the cost of channel history. For each engine (--engines local,redis,nats), two fresh
// Switchboard processes, one whose app keeps history on the benchmark channel and one without
// any history rule, each measured the same way: a max-rate phase (events/s the server accepts
// and delivers) and a fixed-rate phase (--rate, default 200/s: publish→receive percentiles).
// Reported side by side, history off beside history on.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Harness } from '../harness.js';
import type { HistoryEngine, Options } from '../options.js';
import { makePayload, nowUs } from '../protocol.js';
import { fmt, num, pct, type Row } from '../report.js';
import { ServerUnderTest } from '../server-under-test.js';
import { summarizeUsAsMs, type PercentileSummary } from '../stats.js';
import type { Scenario } from './types.js';

const CHANNEL = 'bench-history';
const DEFAULT_RATE = 200;

interface Phase {
  published: number;
  publishRate: number;
  /** Events per second from the first publish to the last delivery. */
  deliveredRate: number;
  expected: number;
  delivered: number;
  complete: boolean;
  failedRequests: number;
  latency: PercentileSummary;
}

interface Run {
  engine: HistoryEngine;
  history: boolean;
  subscribers: number;
  max: Phase;
  fixed: Phase;
}

function engineEnv(o: Options, engine: HistoryEngine, configFile: string): Record<string, string> {
  const env: Record<string, string> = { SWITCHBOARD_ADAPTER: engine, SWITCHBOARD_CONFIG: configFile, SWITCHBOARD_CLUSTER_PREFIX: `bench-${randomBytes(4).toString('hex')}` };
  if (engine === 'redis') env.SWITCHBOARD_REDIS_URL = o.redisUrl;
  if (engine === 'nats') env.SWITCHBOARD_NATS_URL = o.natsUrl;
  return env;
}

/** One publishing phase against `server`: max rate when `rate` is undefined. */
async function phase(h: Harness, server: ServerUnderTest, subs: number, rate: number | undefined, durationMs: number): Promise<Phase> {
  const next = () => [{ channel: CHANNEL, data: makePayload(h.opts.payloadBytes, nowUs()) }];
  await h.fleet.reset();
  const pub = h.publisher(server.target);
  const t0 = performance.now();
  if (rate === undefined) await pub.runMaxRate({ durationMs, maxEvents: h.opts.maxMessages, next });
  else await pub.runFixedRate({ rate, durationMs, maxEvents: h.opts.maxMessages, next });
  const publishMs = performance.now() - t0;
  const expected = pub.stats.events * subs;
  let doneAt = performance.now();
  const complete = await h.drain(async () => {
    doneAt = performance.now();
    return (await h.totals()).delivered >= expected;
  });
  const totals = await h.totals();
  pub.close();
  return {
    published: pub.stats.events,
    publishRate: pub.stats.events / (publishMs / 1000),
    deliveredRate: pub.stats.events / ((doneAt - t0) / 1000),
    expected,
    delivered: totals.delivered,
    complete,
    failedRequests: pub.stats.failedRequests,
    latency: summarizeUsAsMs(totals.latency),
  };
}

async function measure(h: Harness, engine: HistoryEngine, history: boolean, dir: string): Promise<Run> {
  const o = h.opts;
  const subs = o.subs ?? 100;
  const app = { id: o.appId, key: o.appKey, secret: o.appSecret, history: history ? [{ channels: `${CHANNEL}*`, size: 100, ttlSeconds: 300 }] : [] };
  const configFile = join(dir, `${engine}-${history ? 'on' : 'off'}.json`);
  writeFileSync(configFile, JSON.stringify({ apps: [app] }));
  const server = await ServerUnderTest.start(
    { kind: 'switchboard' },
    { creds: h.creds, pin: o.pin, readyPath: '/ready', startupTimeoutMs: o.startupTimeoutMs, token: o.token, env: engineEnv(o, engine, configFile), nodeArgs: o.serverNodeArgs, label: `${engine} history ${history ? 'on' : 'off'}` },
  );
  try {
    const r = await h.open(h.openSpec({ role: 'sub', firstIndex: 0, count: subs, channelPrefix: CHANNEL, channelCount: 1, recordLatency: true, host: server.target.host, port: server.target.port, tag: `${engine}-${history}` }));
    if (r.opened === 0) throw new Error(`no subscriber could connect to ${engine}: ${r.firstError}`);
    // Warm-up: the same publishing, so the JIT has compiled the path before anything counts.
    if (o.warmupS > 0) await phase(h, server, r.opened, undefined, o.warmupS * 1000);
    const max = await phase(h, server, r.opened, undefined, o.durationS * 1000);
    const fixed = await phase(h, server, r.opened, o.rate ?? DEFAULT_RATE, o.durationS * 1000);
    return { engine, history, subscribers: r.opened, max, fixed };
  } finally {
    await h.fleet.closeAll();
    await server.stop();
  }
}

const phaseOk = (p: Phase): boolean => p.complete && p.delivered === p.expected && p.failedRequests === 0;

export const history: Scenario = {
  name: 'history',
  summary: 'history on vs off, per engine: publish rate (max) and p99 latency (at --rate)',
  connections: (o) => o.subs ?? 100,
  serverEnv: () => ({ SWITCHBOARD_ADAPTER: 'local' }),
  async run(h) {
    const o = h.opts;
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-history-'));
    const runs: Run[] = [];
    try {
      for (const engine of o.historyEngines) for (const on of [false, true]) runs.push(await measure(h, engine, on, dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const rows: Row[] = [
      ['subscribers', `${runs[0]?.subscribers ?? 0} on one channel, one fresh server per engine and setting`],
      ['phases', `max rate for ${o.durationS} s (${o.concurrency} requests in flight), then ${o.rate ?? DEFAULT_RATE}/s for ${o.durationS} s`],
    ];
    for (const engine of o.historyEngines) {
      const [off, on] = [false, true].map((x) => runs.find((r) => r.engine === engine && r.history === x)!);
      rows.push(
        [`${engine}: events/s accepted (REST), history off / on`, `${fmt(off.max.publishRate)} / ${fmt(on.max.publishRate)}`],
        [`${engine}: events/s delivered (first publish → last delivery), off / on`, `${fmt(off.max.deliveredRate)} / ${fmt(on.max.deliveredRate)} (on = ${pct(on.max.deliveredRate, off.max.deliveredRate)} % of off)`],
        [`${engine}: p99 ms at max rate, off / on`, `${off.max.latency.p99} / ${on.max.latency.p99}`],
        [`${engine}: p50 / p99 ms at ${o.rate ?? DEFAULT_RATE}/s, off`, `${off.fixed.latency.p50} / ${off.fixed.latency.p99}`],
        [`${engine}: p50 / p99 ms at ${o.rate ?? DEFAULT_RATE}/s, on`, `${on.fixed.latency.p50} / ${on.fixed.latency.p99}`],
      );
    }
    const json = runs.map((r) => ({
      engine: r.engine,
      history: r.history,
      subscribers: r.subscribers,
      maxRate: { publishRate: num(r.max.publishRate), deliveredRate: num(r.max.deliveredRate), published: r.max.published, deliveryRatioPct: pct(r.max.delivered, r.max.expected), latencyMs: r.max.latency },
      fixedRate: { rate: o.rate ?? DEFAULT_RATE, achieved: num(r.fixed.publishRate), deliveryRatioPct: pct(r.fixed.delivered, r.fixed.expected), latencyMs: r.fixed.latency },
    }));
    return { ok: runs.every((r) => phaseOk(r.max) && phaseOk(r.fixed)), window: undefined, rows, json: { runs: json } };
  },
};
