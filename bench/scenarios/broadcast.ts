// Shared body of fanout, latency and channels: subscribe, publish, wait for
// every expected delivery, then account for what happened.

import type { Harness, WindowReport } from '../harness.js';
import { benchUser, makePayload, nowUs } from '../protocol.js';
import { MAX_BATCH, type PublishEvent, type PublisherStats } from '../publisher.js';
import { type Histogram } from '../stats.js';

export interface BroadcastPlan {
  subs: number;
  channelPrefix: string;
  channelCount: number;
  recordLatency: boolean;
  /** undefined = as fast as the server accepts */
  rate: number | undefined;
  batch: boolean;
}

export interface BroadcastResult {
  opened: number;
  failed: number;
  published: number;
  publishMs: number;
  delivered: number;
  expected: number;
  complete: boolean;
  /** publish start → last expected delivery (or drain timeout) */
  deliveryMs: number;
  dropped: number;
  firstDropError: string | undefined;
  latency: Histogram;
  publisher: PublisherStats;
  window: WindowReport;
}

export async function runBroadcast(h: Harness, plan: BroadcastPlan): Promise<BroadcastResult> {
  const { opts } = h;
  const conn = await h.open(
    h.openSpec({
      role: 'sub',
      firstIndex: 0,
      count: plan.subs,
      channelPrefix: plan.channelPrefix,
      channelCount: plan.channelCount,
      recordLatency: plan.recordLatency,
    }),
  );
  if (conn.opened === 0) throw new Error(`no subscriber could connect: ${conn.firstError}`);
  // Each channel has subs/channelCount subscribers (exact when nothing failed).
  const perChannel = conn.opened / plan.channelCount;

  const channelName = (i: number): string =>
    plan.channelCount <= 1 ? plan.channelPrefix : `${plan.channelPrefix}-${i}`;
  const oneEvent = (): PublishEvent => {
    const i = plan.channelCount <= 1 ? 0 : Math.floor(Math.random() * plan.channelCount);
    const data = makePayload(opts.payloadBytes, nowUs());
    // --send (channels only: client i is alone on channel i and signed in as benchUser(i)).
    return opts.send ? { channel: channelName(i), data, user: benchUser(i) } : { channel: channelName(i), data };
  };
  const perRequest = plan.batch ? MAX_BATCH : 1;
  const next = (): PublishEvent[] => Array.from({ length: perRequest }, oneEvent);

  // The first seconds of a fresh server run its publish path interpreted while the JIT compiles
  // it: in a 10 s run those slow events alone would be the p99. Publish the same way for a while,
  // let those deliveries land, then start counting.
  if (opts.warmupS > 0) {
    const warm = h.publisher();
    const publishPlan = { durationMs: opts.warmupS * 1000, maxEvents: opts.maxMessages, next };
    if (plan.rate !== undefined) await warm.runFixedRate({ ...publishPlan, rate: plan.rate });
    else await warm.runMaxRate(publishPlan);
    warm.close();
    const warmExpected = Math.round(warm.stats.events * perChannel);
    await h.drain(async () => (await h.totals()).delivered >= warmExpected);
  }
  const pub = h.publisher();
  await h.fleet.reset();
  const start = await h.mark();
  const t0 = performance.now();
  const durationMs = opts.durationS * 1000;
  if (plan.rate !== undefined) {
    await pub.runFixedRate({ rate: plan.rate, durationMs, maxEvents: opts.maxMessages, next });
  } else {
    await pub.runMaxRate({ durationMs, maxEvents: opts.maxMessages, next });
  }
  const publishMs = performance.now() - t0;
  const published = pub.stats.events;
  const expected = Math.round(published * perChannel);

  let delivered = 0;
  let doneAt = performance.now();
  const complete = await h.drain(async () => {
    const t = await h.totals();
    delivered = t.delivered;
    doneAt = performance.now();
    return delivered >= expected;
  });
  const window = await h.window(start);
  const totals = await h.totals();
  return {
    opened: conn.opened,
    failed: conn.failed,
    published,
    publishMs,
    delivered: totals.delivered,
    expected,
    complete,
    deliveryMs: doneAt - t0,
    dropped: totals.dropped,
    firstDropError: totals.firstDropError,
    latency: totals.latency,
    publisher: pub.stats,
    window,
  };
}
