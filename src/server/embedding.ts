import type { AppRegistry } from '../apps/registry.js';
import type { Config } from '../config/schema.js';
import type { App } from '../core/app.js';
import type { ConnectionSummary, ConnectionTarget } from '../core/bus.js';
import { ALL_CONNECTIONS_CHANNEL, serverToUserChannel, socketChannel } from '../core/channels.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { Hub } from '../core/hub.js';
import { statsOf, type StatsSnapshot } from '../core/stats.js';
import type { HookSetup } from '../embedding/connection-hooks.js';
import { HookRunner, type SwitchboardHooks } from '../embedding/hooks.js';
import { boundedMetadata } from '../embedding/metadata.js';
import type { Logger } from '../log.js';

export interface PublishOptions {
  /** Event name for Pusher subscribers; defaults to "message". */
  event?: string;
  /** App id; defaults to the first configured app. */
  appId?: string;
}

/** What an embedding process calls on a running server, without an HTTP round trip. */
export interface EmbeddingApi {
  /** Publishes to a channel from inside the process (no HTTP round trip). */
  broadcast(channel: string, data: string, options?: PublishOptions): void;
  /** Sends to every connection of the app on every node, both protocols; a Buffer goes as a binary frame. */
  broadcastAll(data: string | Buffer, options?: PublishOptions & { exceptSocketId?: string }): void;
  /** Sends to every connection of a user (native and signed-in Pusher ones); a Buffer goes as a binary frame. */
  sendToUser(user: string, data: string | Buffer, options?: PublishOptions & { session?: string }): void;
  sendToConnection(id: string, data: string | Buffer, options?: PublishOptions): void;
  /** A connection anywhere in the cluster, with its metadata; undefined when there is none by that id. */
  connection(id: string, appId?: string): Promise<ConnectionSummary | undefined>;
  /** Connections of a user (optionally one session) anywhere in the cluster, or one by `{ id }`. */
  connections(target: ConnectionTarget, appId?: string): Promise<ConnectionSummary[]>;
  /**
   * Sets (undefined: clears) the application's metadata of a connection anywhere in the cluster;
   * resolves to whether it was found. Rejects with MetadataError beyond maxConnectionMetadataBytes.
   */
  setMetadata(id: string, value: unknown, appId?: string): Promise<boolean>;
  /** The figures of GET /stats for the app: this node's counters, the cluster-wide connection count. */
  metrics(appId?: string): StatsSnapshot;
  /** Closes connections by id or user (and session); returns how many. */
  disconnect(target: ConnectionTarget, appId?: string): Promise<number>;
}

/** What the front-ends need to run the application's hooks. */
export function hookSetup(hooks: SwitchboardHooks, config: Config, counters: Counters, log: Logger): HookSetup {
  return {
    runner: new HookRunner(hooks, {
      timeoutMs: config.hookTimeoutMs,
      log,
      countFailure: (appId) => counters.increment(appId, CounterName.HookFailures),
    }),
    maxMetadataBytes: config.maxConnectionMetadataBytes,
    onError: (err) => log.error({ err }, 'handling a message after a hook failed'),
  };
}

export function embeddingApi(hub: Hub, counters: Counters, apps: AppRegistry, config: Config): EmbeddingApi {
  // With a database store there is no default app: calls name their appId.
  const defaultApp: App | undefined = config.appStore === 'config' ? config.apps[0] : undefined;
  const appFor = (appId: string | undefined): App => {
    const app = appId === undefined ? defaultApp : apps.cachedById(appId);
    if (!app) throw new Error(appId === undefined ? 'name an appId: a database app store has no default app' : `unknown app id: ${appId}${apps.storeQueries > 0 ? ' (or not cached on this node)' : ''}`);
    return app;
  };
  return {
    broadcast(channel, data, publish = {}) {
      hub.publish(appFor(publish.appId), { kind: 'event', channel, event: publish.event ?? 'message', data });
    },
    broadcastAll(data, send = {}) {
      const except = send.exceptSocketId;
      hub.publish(appFor(send.appId), {
        kind: 'event',
        channel: ALL_CONNECTIONS_CHANNEL,
        event: send.event ?? 'message',
        data,
        ...(except === undefined ? {} : { exceptSocketId: except }),
      });
    },
    sendToUser(user, data, send = {}) {
      hub.publish(appFor(send.appId), {
        kind: 'event',
        channel: serverToUserChannel(user),
        event: send.event ?? 'message',
        data,
        ...(send.session === undefined ? {} : { session: send.session }),
      });
    },
    sendToConnection(id, data, send = {}) {
      hub.publish(appFor(send.appId), { kind: 'event', channel: socketChannel(id), event: send.event ?? 'message', data });
    },
    connection: async (id, appId) => (await hub.describe(appFor(appId).id, { id }))[0],
    connections: (target, appId) => hub.describe(appFor(appId).id, target),
    async setMetadata(id, value, appId) {
      const app = appFor(appId);
      return (await hub.setMetadata(app.id, { id }, boundedMetadata(value, config.maxConnectionMetadataBytes))) > 0;
    },
    metrics: (appId) => statsOf(hub, counters, appFor(appId).id),
    disconnect: (target, appId) => hub.disconnect(appFor(appId).id, target),
  };
}
