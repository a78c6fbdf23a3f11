import { fmt, num, pct, windowJson, windowRows } from '../report.js';
import { summarizeUsAsMs } from '../stats.js';
import { runBroadcast } from './broadcast.js';
import type { Scenario } from './types.js';

export const fanout: Scenario = {
  name: 'fanout',
  summary: 'N subscribers on one channel, publish at max rate (or --rate)',
  connections: (o) => o.subs ?? 1000,
  async run(h) {
    const subs = h.opts.subs ?? 1000;
    const r = await runBroadcast(h, {
      subs,
      channelPrefix: 'bench-fanout',
      channelCount: 1,
      recordLatency: false,
      rate: h.opts.rate,
      batch: false,
    });
    const deliveredPerS = r.delivered / (r.deliveryMs / 1000);
    const cpuPerMsg = r.window.serverCpuUs === undefined || r.delivered === 0 ? undefined : r.window.serverCpuUs / r.delivered;
    const rtt = summarizeUsAsMs(r.publisher.rtt);
    const ratio = pct(r.delivered, r.expected);
    return {
      ok: r.complete && r.delivered === r.expected && r.failed === 0 && r.dropped === 0,
      window: r.window,
      rows: [
        ['subscribers', `${r.opened} (${r.failed} failed)`],
        ['publish mode', h.opts.rate === undefined ? `max rate, ${h.opts.concurrency} in flight` : `${h.opts.rate}/s`],
        ['published events', `${r.published} (${r.publisher.failedRequests} failed requests)`],
        ['publish rate (events/s)', fmt(r.published / (r.publishMs / 1000))],
        ['expected deliveries', r.expected],
        ['delivered', r.delivered],
        ['delivery ratio %', ratio],
        ['delivered msgs/s', fmt(deliveredPerS, 0)],
        ['server CPU µs / delivered msg', fmt(cpuPerMsg, 3)],
        ['REST rtt p50/p99 ms', `${rtt.p50} / ${rtt.p99}`],
        ['connections dropped', r.dropped],
        ...windowRows(r.window),
      ],
      json: {
        subscribers: r.opened,
        failedConnections: r.failed,
        published: r.published,
        failedRequests: r.publisher.failedRequests,
        publishRate: num(r.published / (r.publishMs / 1000)),
        expected: r.expected,
        delivered: r.delivered,
        deliveryRatioPct: ratio,
        deliveredPerSecond: num(deliveredPerS, 0),
        serverCpuUsPerDelivered: num(cpuPerMsg, 4),
        restRttMs: rtt,
        dropped: r.dropped,
        ...windowJson(r.window),
      },
    };
  },
};
