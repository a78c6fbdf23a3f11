import { connectCliff, sourceAddresses } from '../loopback.js';
import { fmt, num, windowJson, windowRows } from '../report.js';
import { summarizeUsAsMs } from '../stats.js';
import type { Scenario } from './types.js';

export const storm: Scenario = {
  name: 'storm',
  summary: 'open+subscribe N connections as fast as possible; handshakes/s',
  connections: (o) => (o.subs ?? 10000) + Math.min(o.warmupConnections, o.subs ?? 10000),
  async run(h) {
    const n = h.opts.subs ?? 10000;
    const channelCount = h.opts.channels ?? 1;
    const cliff = connectCliff();
    const perSource = n / Math.max(1, sourceAddresses(h.server.target.host, n, h.opts.sourceAddrs).length);
    if (perSource > cliff)
      h.warnings.push(
        `WARNING: ${Math.round(perSource)} connections per source address: beyond ~${cliff} Linux's connect() scans the whole ephemeral port range for each new connection (10-30x slower), so handshakes/s measures the kernel; use --subs ${cliff} or less`,
      );
    // A fresh Node process spends its first seconds compiling hot code on helper threads (the
    // server's and the clients'); a storm that lasts ~2 s would mostly measure that. The warm-up
    // wave uses other client indexes, so its sockets' ports differ from the measured wave's.
    const warmup = Math.min(h.opts.warmupConnections, n);
    if (warmup > 0) {
      await h.open(h.openSpec({ role: 'sub', firstIndex: n, count: warmup, channelPrefix: 'bench-storm-warmup', channelCount }));
      await h.fleet.closeAll();
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const queriesBefore = await h.appStore?.queries();
    const start = await h.mark();
    const conn = await h.open(
      h.openSpec({ role: 'sub', firstIndex: 0, count: n, channelPrefix: 'bench-storm', channelCount }),
    );
    const window = await h.window(start);
    const queries = h.appStore && queriesBefore !== undefined ? (await h.appStore.queries()) - queriesBefore : undefined;
    const perS = conn.opened / (conn.elapsedMs / 1000);
    const cpuPer = window.serverCpuUs === undefined || conn.opened === 0 ? undefined : window.serverCpuUs / conn.opened;
    const hs = summarizeUsAsMs(conn.handshake);
    // What the clients themselves spent per handshake (kernel included: on loopback the
    // connect() also runs the server side of the TCP handshake), and so the rate at which
    // one load-generator core would be saturated.
    const loadgenCpuUs = window.loadgen.reduce((s, p) => s + (p.cpuPct / 100) * window.wallMs * 1000, 0);
    const loadgenPer = conn.opened > 0 ? loadgenCpuUs / conn.opened : undefined;
    const loadgenCap = loadgenPer ? 1e6 / loadgenPer : undefined;
    if (loadgenCap !== undefined && loadgenCap < perS * 1.25)
      h.warnings.push(
        `WARNING: the load generator spends ${fmt(loadgenPer, 1)} µs per handshake, i.e. one core would top out near ${fmt(loadgenCap, 0)}/s: this run may measure the generator`,
      );
    return {
      ok: conn.failed === 0,
      window,
      rows: [
        ['connections', `${conn.opened} (${conn.failed} failed)`],
        ['channels', channelCount],
        ['warm-up connections (opened and closed first)', warmup],
        ['handshakes in flight', h.opts.connectConcurrency],
        ['elapsed (s)', fmt(conn.elapsedMs / 1000, 2)],
        ['app store', h.appStore?.description ?? 'config'],
        ['app store queries (measured wave) / per s', queries === undefined ? 'n/a' : `${queries} / ${fmt(queries / (conn.elapsedMs / 1000), 1)}`],
        ['handshakes/s (incl. subscribe)', fmt(perS, 0)],
        ['handshake p50/p99/max ms', `${hs.p50} / ${hs.p99} / ${hs.max}`],
        ['server CPU µs / handshake', fmt(cpuPer, 1)],
        ['load-gen CPU µs / handshake', fmt(loadgenPer, 1)],
        ['load-gen ceiling, one core (handshakes/s)', fmt(loadgenCap, 0)],
        ...windowRows(window),
      ],
      json: {
        connections: conn.opened,
        failedConnections: conn.failed,
        firstError: conn.firstError ?? null,
        channels: channelCount,
        warmupConnections: warmup,
        inFlight: h.opts.connectConcurrency,
        appStore: h.opts.appStore,
        appStoreQueries: queries ?? null,
        handshakesPerSecond: num(perS, 0),
        handshakeMs: hs,
        serverCpuUsPerHandshake: num(cpuPer, 2),
        loadgenCpuUsPerHandshake: num(loadgenPer, 2),
        loadgenCeilingPerSecond: num(loadgenCap, 0),
        ...windowJson(window),
      },
    };
  },
};
