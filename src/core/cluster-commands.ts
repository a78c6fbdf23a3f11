import type { ClusterCommand, CommandResult, ConnectionSummary, ConnectionTarget, NodeStats } from './bus.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { HubContext } from './hub-context.js';

/** Commands run on every node's own connections with the answers gathered: dSock's /disconnect and /info, Pusher's terminate, the embedding API's setMetadata. */
export class ClusterCommands {
  constructor(
    private readonly ctx: HubContext,
    private readonly registry: ConnectionRegistry,
    private readonly nodeStats: () => NodeStats,
  ) {}

  /** Every live node's own numbers, this one's included. */
  async stats(): Promise<NodeStats[]> {
    const results = await this.ctx.bus.request({ kind: 'stats' });
    return results.flatMap((r) => (r.stats ? [r.stats] : []));
  }

  /** Closes every connection of a user on every node. */
  terminateUser(appId: string, userId: string): Promise<number> {
    return this.runEverywhere({ kind: 'terminate', appId, target: { user: userId } });
  }

  /** dSock's /disconnect over the cluster; returns how many connections closed. */
  disconnect(appId: string, target: ConnectionTarget): Promise<number> {
    return this.runEverywhere({ kind: 'terminate', appId, target });
  }

  private async runEverywhere(command: ClusterCommand): Promise<number> {
    const results = await this.ctx.bus.request(command);
    return results.reduce((sum, r) => sum + (r.closed ?? 0), 0);
  }

  /** Connections over the cluster matching `target`, for dSock's /info. */
  async describe(appId: string, target: ConnectionTarget): Promise<ConnectionSummary[]> {
    const results = await this.ctx.bus.request({ kind: 'info', appId, target });
    return results.flatMap((r) => r.connections ?? []);
  }

  /** Sets (or with undefined, clears) the embedding application's data of connections anywhere in the cluster; returns how many. */
  async setMetadata(appId: string, target: ConnectionTarget, value: unknown): Promise<number> {
    const results = await this.ctx.bus.request({ kind: 'metadata', appId, target, value });
    return results.reduce((sum, r) => sum + (r.updated ?? 0), 0);
  }

  /** Runs a command (from any node) on this node's connections. */
  execute(command: Exclude<ClusterCommand, { kind: 'app-changed' | 'console-watch' | 'console-entries' }>): CommandResult {
    if (command.kind === 'stats') return { stats: this.nodeStats() };
    if (command.kind === 'terminate') {
      const conns = this.registry.find(command.appId, command.target);
      for (const conn of conns) conn.close('terminated');
      return { closed: conns.length };
    }
    if (command.kind === 'metadata') {
      const conns = this.registry.find(command.appId, command.target);
      for (const conn of conns) conn.metadata = command.value;
      return { updated: conns.length };
    }
    // A kind this version does not know comes from a newer node during a rolling upgrade: an empty
    // answer, so its request completes and no connection is touched by a guess at what it meant.
    if (command.kind !== 'info') return {};
    const conns = this.registry.find(command.appId, command.target);
    return {
      connections: conns.map((c) => ({
        id: c.id,
        node: this.ctx.self,
        protocol: c.protocol,
        user: c.user?.id,
        session: c.user?.session,
        lastActivityAt: c.lastActivityAt,
        ...(c.metadata === undefined ? {} : { metadata: c.metadata }),
      })),
    };
  }
}
