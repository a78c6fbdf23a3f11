import type { Traffic } from './app-state.js';
import type { App } from './app.js';
import type { ConnectionSummary, ConnectionTarget } from './bus.js';
import type { ChannelInfo } from './channel-reads.js';
import type { HistoryPage } from './history.js';
import type { Connection } from './connection.js';
import type { ChannelMessage } from './message.js';

/** What the HTTP API and the metrics read of the hub: channels, presence, connections, traffic (no writes). */
export interface HubReadView {
  readonly nodeId: string;
  /** False while the cluster engine is unreachable. */
  readonly isHealthy: boolean;
  channelInfo(appId: string, name: string): ChannelInfo;
  /** Occupied channels whose name starts with `prefix`. */
  channels(appId: string, prefix?: string): Map<string, ChannelInfo>;
  presenceUserIds(appId: string, channel: string): string[];
  isMember(appId: string, channel: string, userId: string): boolean;
  /** Connections of the app over the whole cluster. */
  connectionCountOf(appId: string): number;
  /** This node's connections of the app. */
  connections(appId: string): IterableIterator<Connection>;
  /** Channels with subscribers on this node. */
  localChannelCount(appId: string): number;
  traffic(appId: string): Readonly<Traffic>;
  /**
   * A page of a channel's history: after offset `after`, or the newest `limit` with `newest`;
   * null when the channel keeps no history.
   */
  readHistory(app: App, channel: string, after: number | undefined, limit: number, newest: boolean): Promise<HistoryPage> | null;
}

/** What the HTTP API asks the hub to do: publish, and close or list connections over the cluster. */
export interface HubActions {
  publish(app: App, message: ChannelMessage): void;
  terminateUser(appId: string, userId: string): Promise<number>;
  disconnect(appId: string, target: ConnectionTarget): Promise<number>;
  describe(appId: string, target: ConnectionTarget): Promise<ConnectionSummary[]>;
}
