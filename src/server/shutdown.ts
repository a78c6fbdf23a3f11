import type { Server } from 'node:http';
import type { AppRegistry } from '../apps/registry.js';
import type { Hub } from '../core/hub.js';
import type { Logger } from '../log.js';
import type { RefusalLog } from '../refusal-log.js';
import type { WsTransport } from '../transport/ws/server.js';
import type { WebhookDispatcher } from '../webhooks/dispatcher.js';

/** Time to leave the cluster cleanly even when the drain used all of shutdownTimeoutMs. */
const CLUSTER_GOODBYE_MS = 1_000;

export interface RunningParts {
  readonly apps: AppRegistry;
  readonly hub: Hub;
  readonly transport: WsTransport;
  readonly http: Server;
  readonly webhooks: WebhookDispatcher;
  readonly metrics: { readonly server: Server } | undefined;
  /** The plain-HTTP listener redirecting to HTTPS, when there is one. */
  readonly redirect: { readonly server: Server } | undefined;
  /** The dashboard's own listener (dashboardPort), when there is one. */
  readonly dashboard: { readonly server: Server } | undefined;
  /** Stops watching the certificate files. */
  readonly tls: { close(): void } | undefined;
  /** Leaves the cluster and closes the engine's stores. */
  readonly leaveCluster: () => Promise<void>;
  readonly log: Logger;
  /** What it gathered is written before the process goes. */
  readonly refusals: RefusalLog;
}

export interface ShutdownTiming {
  readonly shutdownTimeoutMs: number;
  readonly shutdownSpreadMs: number;
}

/**
 * The graceful shutdown, in order: stop accepting, tell clients to reconnect (spread over a
 * window), wait for sockets until the deadline, cut the rest, close HTTP, flush webhooks,
 * close metrics, leave the cluster. `stopServing` runs first, so /up answers 503 at once.
 */
export async function shutDown(parts: RunningParts, timing: ShutdownTiming, stopServing: () => void): Promise<void> {
  const { apps, hub, transport, http, webhooks, metrics, log } = parts;
  const deadline = Date.now() + timing.shutdownTimeoutMs;
  stopServing();
  transport.stopAccepting();
  const conns = apps.all().flatMap((app) => [...hub.connections(app.id)]);
  await spread(conns, Math.min(timing.shutdownSpreadMs, timing.shutdownTimeoutMs / 2), (conn) => conn.close('shutdown'));
  transport.close(); // anything that connected meanwhile
  await transport.drained(Math.max(0, deadline - Date.now()));
  transport.terminateAll();
  await new Promise<void>((resolve) => {
    http.close(() => resolve());
    http.closeIdleConnections();
    setTimeout(() => http.closeAllConnections(), Math.max(0, deadline - Date.now())).unref();
  });
  await webhooks.close(Math.max(0, deadline - Date.now()));
  for (const extra of [metrics, parts.redirect, parts.dashboard]) if (extra) await new Promise<void>((resolve) => extra.server.close(() => resolve()).closeAllConnections());
  parts.tls?.close();
  // Leaving the cluster waits on the engine's answers: an engine that stopped answering must
  // not hold the shutdown past its deadline (plus a moment to say goodbye when it is spent).
  const leaving = parts.leaveCluster();
  if (await settlesWithin(leaving, Math.max(0, deadline - Date.now()) + CLUSTER_GOODBYE_MS)) await leaving; // its error, if any
  else log.warn({ afterMs: timing.shutdownTimeoutMs + CLUSTER_GOODBYE_MS }, 'the cluster engine did not answer in time: stopped without a clean leave');
  parts.refusals.flush();
}

/** Whether `work` settled (either way) within `ms`; it is left to finish on its own if not. */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, ms, false)));
  const result = await Promise.race([settled, timedOut]);
  clearTimeout(timer);
  return result;
}

/**
 * Runs `each` over `items` in slices spread evenly over `windowMs`, so that clients told to
 * reconnect do not all arrive at the other nodes in the same instant.
 */
async function spread<T>(items: readonly T[], windowMs: number, each: (item: T) => void): Promise<void> {
  const SLICE_MS = 50;
  const slices = Math.max(1, Math.floor(windowMs / SLICE_MS));
  const perSlice = Math.max(1, Math.ceil(items.length / slices));
  for (let i = 0; i < items.length; i += perSlice) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, SLICE_MS));
    for (const item of items.slice(i, i + perSlice)) each(item);
  }
}
