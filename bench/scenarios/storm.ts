import { fmt, num, windowJson, windowRows } from '../report.js';
import { summarizeUsAsMs } from '../stats.js';
import type { Scenario } from './types.js';

export const storm: Scenario = {
  name: 'storm',
  summary: 'open+subscribe N connections as fast as possible; handshakes/s',
  connections: (o) => o.subs ?? 10000,
  async run(h) {
    const n = h.opts.subs ?? 10000;
    const channelCount = h.opts.channels ?? 1;
    const start = await h.mark();
    const conn = await h.open(
      h.openSpec({ role: 'sub', firstIndex: 0, count: n, channelPrefix: 'bench-storm', channelCount }),
    );
    const window = await h.window(start);
    const perS = conn.opened / (conn.elapsedMs / 1000);
    const cpuPer = window.serverCpuUs === undefined || conn.opened === 0 ? undefined : window.serverCpuUs / conn.opened;
    const hs = summarizeUsAsMs(conn.handshake);
    return {
      ok: conn.failed === 0,
      window,
      rows: [
        ['connections', `${conn.opened} (${conn.failed} failed)`],
        ['channels', channelCount],
        ['handshakes in flight', h.opts.connectConcurrency],
        ['elapsed (s)', fmt(conn.elapsedMs / 1000, 2)],
        ['handshakes/s (incl. subscribe)', fmt(perS, 0)],
        ['handshake p50/p99/max ms', `${hs.p50} / ${hs.p99} / ${hs.max}`],
        ['server CPU µs / handshake', fmt(cpuPer, 1)],
        ...windowRows(window),
      ],
      json: {
        connections: conn.opened,
        failedConnections: conn.failed,
        firstError: conn.firstError ?? null,
        channels: channelCount,
        inFlight: h.opts.connectConcurrency,
        handshakesPerSecond: num(perS, 0),
        handshakeMs: hs,
        serverCpuUsPerHandshake: num(cpuPer, 2),
        ...windowJson(window),
      },
    };
  },
};
