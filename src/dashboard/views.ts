import type { AppRegistry } from '../apps/registry.js';
import type { App } from '../core/app.js';
import type { NodeStats } from '../core/bus.js';
import { channelKind, isReservedEventName, isValidChannelName } from '../core/channels.js';
import type { Hub } from '../core/hub.js';
import { HttpError } from '../http/errors.js';

/** What the dashboard reads and does on the hub. */
export type DashboardHub = Pick<
  Hub,
  'nodeId' | 'isHealthy' | 'nodeStats' | 'channels' | 'presenceUserIds' | 'connectionCountOf' | 'signedInUserIds' | 'publish'
>;

/** Most channels one app view lists; the search narrows the rest. */
const MAX_CHANNELS_LISTED = 200;

export interface Overview {
  readonly node: string;
  readonly ready: { readonly ready: boolean; readonly serving: boolean; readonly cluster: boolean };
  /** Every live node's own numbers, from the cluster's stats command. */
  readonly nodes: readonly NodeStats[];
  /** Cluster-wide, from the tallies every node keeps. */
  readonly totals: { readonly connections: number; readonly channels: number; readonly users: number };
  readonly apps: ReadonlyArray<{ readonly id: string; readonly enabled: boolean; readonly connections: number; readonly channels: number }>;
  readonly at: number;
}

export async function overview(hub: DashboardHub, apps: AppRegistry, serving: boolean): Promise<Overview> {
  const nodes = (await hub.nodeStats()).slice().sort((a, b) => a.node.localeCompare(b.node));
  const perApp = apps.all().map((app) => ({
    id: app.id,
    enabled: app.enabled,
    connections: hub.connectionCountOf(app.id),
    channels: hub.channels(app.id).size,
    users: hub.signedInUserIds(app.id).length,
  }));
  const sum = (key: 'connections' | 'channels' | 'users'): number => perApp.reduce((n, a) => n + a[key], 0);
  return {
    node: hub.nodeId,
    ready: { ready: serving && hub.isHealthy, serving, cluster: hub.isHealthy },
    nodes,
    totals: { connections: sum('connections'), channels: sum('channels'), users: sum('users') },
    apps: perApp.map(({ users: _users, ...rest }) => rest),
    at: Date.now(),
  };
}

/** One app: its channels (with subscriber counts and presence members), signed-in users; `query` filters names. */
export function appView(hub: DashboardHub, app: App, query: string) {
  const matches = (name: string): boolean => query === '' || name.toLowerCase().includes(query.toLowerCase());
  const all = [...hub.channels(app.id)].filter(([name]) => matches(name));
  const channels = all.slice(0, MAX_CHANNELS_LISTED).map(([name, info]) => ({
    name,
    subscribers: info.subscriptionCount,
    members: channelKind(name).isPresence ? hub.presenceUserIds(app.id, name) : undefined,
  }));
  const users = hub.signedInUserIds(app.id).filter(matches).slice(0, MAX_CHANNELS_LISTED);
  return {
    id: app.id,
    key: app.key,
    enabled: app.enabled,
    connections: hub.connectionCountOf(app.id),
    channels,
    channelsTotal: all.length,
    users,
  };
}

/** The event creator: validated as the REST API would, then published through the hub. */
export function publishFromDashboard(hub: DashboardHub, app: App, body: Record<string, unknown>): { channel: string; event: string } {
  const { channel, event, data } = body;
  if (typeof channel !== 'string' || !isValidChannelName(channel, app.maxChannelNameLength)) throw new HttpError(400, 'channel: not a valid channel name');
  if (typeof event !== 'string' || event.length === 0 || event.length > app.maxEventNameLength) throw new HttpError(400, `event: 1 to ${app.maxEventNameLength} characters`);
  if (isReservedEventName(event)) throw new HttpError(400, 'event: names starting with pusher: are reserved');
  if (typeof data !== 'string') throw new HttpError(400, 'data: must be a string');
  if (Buffer.byteLength(data) > app.maxEventDataBytes) throw new HttpError(413, `data: larger than ${app.maxEventDataBytes} bytes`);
  if (!app.enabled) throw new HttpError(403, 'Application is disabled');
  hub.publish(app, { kind: 'event', channel, event, data });
  return { channel, event };
}
