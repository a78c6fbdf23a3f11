import type { ConsoleCommand } from './debug-tap.js';
import type { ChannelMessage } from './message.js';
import type { StateDelta } from './state-delta.js';

/** dSock's addressing: one connection, or a user's connections (optionally one session's). */
export type ConnectionTarget = { readonly id: string } | { readonly user: string; readonly session?: string | undefined };

export interface ConnectionSummary {
  readonly id: string;
  readonly node: string;
  readonly protocol: string;
  readonly user?: string | undefined;
  readonly session?: string | undefined;
  /** Epoch ms of the client's last sign of life. */
  readonly lastActivityAt: number;
  /** The embedding application's data for the connection, when it set some. */
  readonly metadata?: unknown;
}

/** Work that every node does on its own connections, with the answers gathered. */
export type ClusterCommand =
  | { readonly kind: 'terminate'; readonly appId: string; readonly target: ConnectionTarget }
  | { readonly kind: 'info'; readonly appId: string; readonly target: ConnectionTarget }
  /** An app was changed through this cluster (admin API): every node re-reads it now rather than after its cache TTL. */
  | { readonly kind: 'app-changed'; readonly appId: string }
  /** `value` is already bounded and JSON (embedding/metadata.ts); undefined clears. */
  | { readonly kind: 'metadata'; readonly appId: string; readonly target: ConnectionTarget; readonly value?: unknown }
  | { readonly kind: 'stats' }
  /** The debug console, cluster-wide (debug-tap.ts). */
  | ConsoleCommand;

/** One node's own numbers, gathered by the `stats` command for the dashboard's overview. */
export interface NodeStats {
  readonly node: string;
  readonly healthy: boolean;
  readonly connections: number;
  /** Since start, over all apps: published from this node, frames delivered by it. */
  readonly published: number;
  readonly delivered: number;
  /** Refusals and losses over all apps (counters.ts names), and extras such as the webhook queue. */
  readonly counters: Readonly<Record<string, number>>;
}

export interface CommandResult {
  readonly closed?: number;
  readonly updated?: number;
  readonly connections?: readonly ConnectionSummary[];
  readonly stats?: NodeStats;
}

/** What a bus calls on this node's hub. */
export interface BusSink {
  deliver(appId: string, message: ChannelMessage): void;
  /** Applies another node's share; with `replace`, the share is its whole state (a snapshot). */
  applyRemote(node: string, deltas: readonly StateDelta[], replace: boolean): void;
  /**
   * A node left or died: everything it owned goes. `reportLeaves`: this node reports the
   * vacated channels and removed members that causes (one surviving node does, for a death).
   */
  dropNode(node: string, reportLeaves: boolean): void;
  /** This node's whole share, for snapshots. */
  ownedState(): StateDelta[];
  execute(command: ClusterCommand): CommandResult;
}

/**
 * How messages and state reach every node. The in-process bus serves a single node; cluster
 * engines (cluster/) carry both to the other nodes. A bus delivers each published message once
 * per node, in publish order per publisher and channel.
 */
export interface MessageBus {
  readonly nodeId: string;
  /** False while the engine is unreachable (the node keeps serving its own clients). */
  readonly isHealthy: boolean;
  start(sink: BusSink): Promise<void>;
  publish(appId: string, message: ChannelMessage): void;
  /**
   * A channel got its first subscriber on this node (interest routing). A promise when the node
   * was not yet receiving that channel: subscribers are told they are in once it settles.
   */
  watch?(appId: string, channel: string): Promise<void> | undefined;
  /** A channel lost its last subscriber on this node. */
  unwatch?(appId: string, channel: string): void;
  /** Tells the other nodes about a change in this node's share of the state. */
  announce(delta: StateDelta): void;
  /** Runs a command on every live node (this one included) and gathers the answers. */
  request(command: ClusterCommand): Promise<CommandResult[]>;
  close(): Promise<void>;
}
