import type { CounterName, Counters } from './counters.js';
import type { HubReadView } from './hub-view.js';

/** The figures of `GET /stats` (and of the embedding API's `metrics()`), for one app. */
export interface StatsSnapshot {
  /** This node's id in the cluster. */
  readonly node: string;
  /** The app's connections over the whole cluster. */
  readonly connections: number;
  /** This node's refusals and losses for the app, since it started. */
  readonly counters: Readonly<Record<CounterName, number>>;
  /** Refusals made before any app was known (per-IP limits): the whole node's. */
  readonly serverCounters: Readonly<Record<CounterName, number>>;
}

export function statsOf(hub: Pick<HubReadView, 'nodeId' | 'connectionCountOf'>, counters: Counters, appId: string): StatsSnapshot {
  return {
    node: hub.nodeId,
    connections: hub.connectionCountOf(appId),
    counters: counters.snapshot(appId),
    // Refusals made before any app was known (per-IP limits) belong to the whole server.
    serverCounters: counters.snapshot(''),
  };
}
