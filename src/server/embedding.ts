import type { AppRegistry } from '../apps/registry.js';
import type { App } from '../core/app.js';
import type { ConnectionTarget } from '../core/bus.js';
import { serverToUserChannel, socketChannel } from '../core/channels.js';
import type { Hub } from '../core/hub.js';

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
  /** Sends to every connection of a user (native and signed-in Pusher ones); a Buffer goes as a binary frame. */
  sendToUser(user: string, data: string | Buffer, options?: PublishOptions & { session?: string }): void;
  sendToConnection(id: string, data: string | Buffer, options?: PublishOptions): void;
  /** Closes connections by id or user (and session); returns how many. */
  disconnect(target: ConnectionTarget, appId?: string): Promise<number>;
}

export function embeddingApi(hub: Hub, apps: AppRegistry, defaultApp: App): EmbeddingApi {
  const appFor = (appId: string | undefined): App => {
    const app = appId === undefined ? defaultApp : apps.byId(appId);
    if (!app) throw new Error(`unknown app id: ${appId}`);
    return app;
  };
  return {
    broadcast(channel, data, publish = {}) {
      hub.publish(appFor(publish.appId), { kind: 'event', channel, event: publish.event ?? 'message', data });
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
    disconnect: (target, appId) => hub.disconnect(appFor(appId).id, target),
  };
}
