import { fmt, num, pct, windowJson, windowRows } from '../report.js';
import { summarizeUsAsMs } from '../stats.js';
import { runBroadcast } from './broadcast.js';
import type { Scenario } from './types.js';

export const latency: Scenario = {
  name: 'latency',
  summary: 'fixed publish rate to N subscribers; publish→receive percentiles',
  connections: (o) => o.subs ?? 1000,
  async run(h) {
    const subs = h.opts.subs ?? 1000;
    const rate = h.opts.rate ?? 50;
    const r = await runBroadcast(h, {
      subs,
      channelPrefix: 'bench-latency',
      channelCount: 1,
      recordLatency: true,
      rate,
      batch: false,
    });
    const lat = summarizeUsAsMs(r.latency);
    const lag = summarizeUsAsMs(r.publisher.scheduleLag);
    const ratio = pct(r.delivered, r.expected);
    if (r.publisher.lateTicks > 0)
      h.warnings.push(`publisher missed its schedule on ${r.publisher.lateTicks} timer ticks (all ${h.opts.concurrency} requests in flight): achieved rate may be below target`);
    return {
      ok: r.complete && r.delivered === r.expected && r.failed === 0 && r.dropped === 0,
      window: r.window,
      rows: [
        ['subscribers', `${r.opened} (${r.failed} failed)`],
        ['target rate (events/s)', rate],
        ['achieved rate (events/s)', fmt(r.published / (r.publishMs / 1000))],
        ['published events', r.published],
        ['delivered / expected', `${r.delivered} / ${r.expected} (${ratio} %)`],
        ['latency samples', lat.count],
        ['latency p50 ms', lat.p50],
        ['latency p90 ms', lat.p90],
        ['latency p99 ms', lat.p99],
        ['latency p99.9 ms', lat.p999],
        ['latency max ms', lat.max],
        ['publisher timer lag p50/p99/max ms', `${lag.p50} / ${lag.p99} / ${lag.max}`],
        ['connections dropped', r.dropped],
        ...windowRows(r.window),
      ],
      json: {
        subscribers: r.opened,
        failedConnections: r.failed,
        targetRate: rate,
        achievedRate: num(r.published / (r.publishMs / 1000)),
        published: r.published,
        expected: r.expected,
        delivered: r.delivered,
        deliveryRatioPct: ratio,
        latencyMs: lat,
        publisherLagMs: lag,
        dropped: r.dropped,
        ...windowJson(r.window),
      },
    };
  },
};
