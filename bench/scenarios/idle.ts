import { fmt, num, windowJson, windowRows } from '../report.js';
import type { Scenario } from './types.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const idle: Scenario = {
  name: 'idle',
  summary: 'N idle subscribed connections; server RSS per connection',
  connections: (o) => o.subs ?? 10000,
  async run(h) {
    const n = h.opts.subs ?? 10000;
    const channelCount = h.opts.channels ?? 100;
    if (h.server.pid === undefined) h.warnings.push('server pid unknown (use --server/--server-cmd or --server-pid): no RSS numbers');
    await sleep(Math.min(h.opts.settleMs, 1000)); // let a freshly started server finish warming up
    const start = await h.mark();
    const conn = await h.open(
      h.openSpec({ role: 'sub', firstIndex: 0, count: n, channelPrefix: 'bench-idle', channelCount }),
    );
    await sleep(h.opts.settleMs);
    const window = await h.window(start);
    const totals = await h.totals();
    const before = start.serverRssBytes;
    const after = window.serverRssBytes;
    const perConn = before !== undefined && after !== undefined && conn.opened > 0 ? (after - before) / conn.opened : undefined;
    const loadgenRss = window.workers.reduce((s, w) => s + w.rssBytes, 0);
    return {
      ok: conn.failed === 0 && totals.dropped === 0,
      window,
      rows: [
        ['connections held', `${conn.opened} (${conn.failed} failed, ${totals.dropped} dropped)`],
        ['channels', channelCount],
        ['server open-file limit', h.server.maxOpenFiles()],
        ['server RSS before (MB)', before === undefined ? undefined : fmt(before / 2 ** 20)],
        ['server RSS after (MB)', after === undefined ? undefined : fmt(after / 2 ** 20)],
        ['server RSS per connection (KB)', perConn === undefined ? undefined : fmt(perConn / 1024, 2)],
        ['load-gen client RSS (MB)', fmt(loadgenRss / 2 ** 20)],
        ...windowRows(window),
      ],
      json: {
        connections: conn.opened,
        failedConnections: conn.failed,
        dropped: totals.dropped,
        channels: channelCount,
        serverRssBeforeBytes: before ?? null,
        serverRssAfterBytes: after ?? null,
        serverRssPerConnectionBytes: num(perConn, 0) ?? null,
        serverMaxOpenFiles: h.server.maxOpenFiles() ?? null,
        ...windowJson(window),
      },
    };
  },
};
