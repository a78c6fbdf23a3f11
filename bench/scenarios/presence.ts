import { fmt, num, windowJson, windowRows } from '../report.js';
import type { Scenario } from './types.js';

const CHANNEL = 'presence-bench';

/**
 * Watchers join first and stay; churners join and leave in a loop with
 * distinct user ids. Every watcher must then see exactly one member_added per
 * join and one member_removed per leave.
 */
export const presence: Scenario = {
  name: 'presence',
  summary: 'clients join/leave a presence channel; joins/s and member event accounting',
  connections: (o) => (o.subs ?? 50) + o.watchers,
  async run(h) {
    if (h.opts.protocol !== 'pusher') throw new Error('presence needs --protocol pusher');
    const churners = h.opts.subs ?? 50;
    const watchers = h.opts.watchers;
    const w = await h.open(
      h.openSpec({ role: 'watcher', firstIndex: 0, count: watchers, channelPrefix: CHANNEL, channelCount: 1 }),
    );
    const c = await h.open(
      h.openSpec({ role: 'churner', firstIndex: watchers, count: churners, channelPrefix: CHANNEL, channelCount: 1 }),
    );
    if (w.opened === 0 || c.opened === 0) throw new Error(`presence setup failed: ${w.firstError ?? c.firstError}`);
    await h.fleet.reset();
    const start = await h.mark();
    const t0 = performance.now();
    const results = await h.fleet.churn({ durationMs: h.opts.durationS * 1000, maxJoinsPerClient: h.opts.maxJoins });
    const churnMs = performance.now() - t0;
    const joins = results.reduce((s, r) => s + r.joins, 0);
    const leaves = results.reduce((s, r) => s + r.leaves, 0);
    const joinErrors = results.reduce((s, r) => s + r.joinErrors, 0);
    if (joinErrors > 0)
      h.warnings.push(
        `${joinErrors} joins refused (Pusher caps presence channels at 100 members; watchers + churners must fit): ${results.find((r) => r.firstJoinError)?.firstJoinError}`,
      );
    const wantAdded = joins * w.opened;
    const wantRemoved = leaves * w.opened;
    let added = 0;
    let removed = 0;
    const complete = await h.drain(async () => {
      const t = await h.totals();
      added = t.memberAdded;
      removed = t.memberRemoved;
      return added >= wantAdded && removed >= wantRemoved;
    });
    const window = await h.window(start);
    const totals = await h.totals();
    const consistent = complete && added === wantAdded && removed === wantRemoved && joins === leaves && joinErrors === 0;
    const joinsPerS = joins / (churnMs / 1000);
    const cpuPerJoin = window.serverCpuUs === undefined || joins === 0 ? undefined : window.serverCpuUs / joins;
    return {
      ok: consistent && w.failed === 0 && c.failed === 0 && totals.dropped === 0,
      window,
      rows: [
        ['watchers / churners', `${w.opened} / ${c.opened}`],
        ['joins / leaves / refused', `${joins} / ${leaves} / ${joinErrors}`],
        ['joins/s', fmt(joinsPerS, 0)],
        ['member_added seen / expected', `${added} / ${wantAdded}`],
        ['member_removed seen / expected', `${removed} / ${wantRemoved}`],
        ['accounting', consistent ? 'consistent' : 'MISMATCH'],
        ['server CPU µs / join+leave', fmt(cpuPerJoin, 1)],
        ['connections dropped', totals.dropped],
        ...windowRows(window),
      ],
      json: {
        watchers: w.opened,
        churners: c.opened,
        joins,
        leaves,
        joinErrors,
        joinsPerSecond: num(joinsPerS, 0),
        memberAdded: added,
        memberAddedExpected: wantAdded,
        memberRemoved: removed,
        memberRemovedExpected: wantRemoved,
        consistent,
        serverCpuUsPerJoinLeave: num(cpuPerJoin, 2),
        dropped: totals.dropped,
        ...windowJson(window),
      },
    };
  },
};
