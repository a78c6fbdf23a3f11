import { fmt, num, pct, windowJson, windowRows } from '../report.js';
import { summarizeUsAsMs } from '../stats.js';
import { runBroadcast } from './broadcast.js';
import type { Options } from '../options.js';
import { BENCH_JWT_SECRET } from '../protocol.js';
import type { Scenario } from './types.js';

function publishMode(o: Options): string {
  if (o.protocol === 'native') return o.send ? 'native POST /send to each client\'s user' : 'native POST /broadcast';
  return o.batch ? 'batch_events x10' : 'events';
}

export const channels: Scenario = {
  name: 'channels',
  summary: 'N clients each on its own channel; REST publishes to random channels',
  connections: (o) => o.subs ?? 10000,
  // --send: native clients sign in as users with JWTs made with this secret.
  serverEnv: (o): Record<string, string> => (o.send ? { SWITCHBOARD_APP_JWT_SECRET: BENCH_JWT_SECRET } : {}),
  async run(h) {
    const subs = h.opts.subs ?? 10000;
    const r = await runBroadcast(h, {
      subs,
      channelPrefix: 'bench-ch',
      channelCount: subs,
      recordLatency: false,
      rate: h.opts.rate,
      batch: h.opts.batch,
    });
    const eventsPerS = r.published / (r.publishMs / 1000);
    const cpuPerEvent = r.window.serverCpuUs === undefined || r.published === 0 ? undefined : r.window.serverCpuUs / r.published;
    const sockets = r.publisher.socketsOpened;
    const keepAliveOk = sockets <= h.opts.concurrency;
    if (!keepAliveOk)
      h.warnings.push(`keep-alive not honoured: ${sockets} HTTP sockets for ${r.publisher.requests} requests (${h.opts.concurrency} expected)`);
    const rtt = summarizeUsAsMs(r.publisher.rtt);
    const ratio = pct(r.delivered, r.expected);
    return {
      ok: r.complete && r.delivered === r.expected && r.failed === 0 && keepAliveOk,
      window: r.window,
      rows: [
        ['clients / channels', `${r.opened} (${r.failed} failed) / ${subs}`],
        ['publish mode', `${publishMode(h.opts)}, ${h.opts.rate === undefined ? 'max rate' : `${h.opts.rate}/s`}`],
        ['HTTP requests', `${r.publisher.requests} (${r.publisher.failedRequests} failed)`],
        ['HTTP sockets opened', `${sockets} (keep-alive ${keepAliveOk ? 'honoured' : 'NOT honoured'})`],
        ['published events', r.published],
        ['events/s', fmt(eventsPerS, 0)],
        ['delivered / expected', `${r.delivered} / ${r.expected} (${ratio} %)`],
        ['server CPU µs / event', fmt(cpuPerEvent, 2)],
        ['REST rtt p50/p99 ms', `${rtt.p50} / ${rtt.p99}`],
        ...windowRows(r.window),
      ],
      json: {
        clients: r.opened,
        failedConnections: r.failed,
        batch: h.opts.batch,
        publishMode: publishMode(h.opts),
        requests: r.publisher.requests,
        failedRequests: r.publisher.failedRequests,
        httpSocketsOpened: sockets,
        keepAliveHonoured: keepAliveOk,
        published: r.published,
        eventsPerSecond: num(eventsPerS, 0),
        expected: r.expected,
        delivered: r.delivered,
        deliveryRatioPct: ratio,
        serverCpuUsPerEvent: num(cpuPerEvent, 3),
        restRttMs: rtt,
        ...windowJson(r.window),
      },
    };
  },
};
