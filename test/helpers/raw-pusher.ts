import { createHmac } from 'node:crypto';
import type Pusher from 'pusher';
import { WebSocket, type ClientOptions } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { RawClient } from './clients.js';
import { APP } from './server.js';

/** Helpers for connection, channel-auth, presence, cache and subscription-count tests. */

export type Frame = RawClient['messages'][number];
export type AppCredentials = { readonly id: string; readonly key: string; readonly secret: string };

export const PROTOCOL_QUERY = 'protocol=7&client=raw&version=1.0';

/** A raw client on `/app/{key}` with ws options (e.g. `autoPong: false` for a client that never answers pings). */
export async function rawClient(server: Switchboard, key: string = APP.key, wsOptions: ClientOptions = {}): Promise<RawClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/app/${key}?${PROTOCOL_QUERY}`, wsOptions);
  const client = new RawClient(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return client;
}

/** `data` decoded once more when the server sent it as a JSON string (Pusher's double encoding). */
export function decoded(m: Frame): unknown {
  return typeof m.data === 'string' ? JSON.parse(m.data) : m.data;
}

/** `<key>:<hex hmac>` over `socketId:channel[:channelData]`, computed here rather than by an SDK. */
export function channelAuth(socketId: string, channel: string, channelData?: string, app: AppCredentials = APP): string {
  const toSign = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${app.key}:${createHmac('sha256', app.secret).update(toSign).digest('hex')}`;
}

/** Sends pusher:subscribe with `data` and resolves with the channel's success or error frame. */
export function subscribeRaw(client: RawClient, channel: string, extra: Record<string, unknown> = {}): Promise<Frame> {
  client.send({ event: 'pusher:subscribe', data: { channel, ...extra } });
  return subscriptionResult(client, channel);
}

/** The channel's first pusher_internal:subscription_succeeded or pusher:subscription_error. */
export function subscriptionResult(client: RawClient, channel: string): Promise<Frame> {
  return client.next((m) => (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error') && m.channel === channel);
}

/**
 * Subscribes with a correct signature (and `channelData` for presence) and fails unless the
 * subscription succeeds; resolves with the success frame.
 */
export async function subscribeSigned(client: RawClient, channel: string, channelData?: string, app: AppCredentials = APP): Promise<Frame> {
  const auth = channelAuth(await client.socketId(), channel, channelData, app);
  const result = await subscribeRaw(client, channel, channelData === undefined ? { auth } : { auth, channel_data: channelData });
  if (result.event !== 'pusher_internal:subscription_succeeded') throw new Error(`subscription to ${channel} failed: ${JSON.stringify(result.data)}`);
  return result;
}

/** The index of the first frame matching `pred`, or -1. */
export function indexOf(client: RawClient, pred: (m: Frame) => boolean): number {
  return client.messages.findIndex(pred);
}

/**
 * Triggers `marker` on `channel` over REST and waits until `client` receives it: everything the
 * server wrote to that socket before it has then arrived too, so absences can be asserted.
 */
export async function flush(client: RawClient, sdk: Pusher, channel: string, marker: string): Promise<void> {
  await sdk.trigger(channel, marker, {});
  await client.event(marker, channel);
}

/** GET on the REST API (signed by the SDK), parsed. */
export async function restGet(sdk: Pusher, path: string, params: Record<string, string> = {}): Promise<unknown> {
  const res = await sdk.get({ path, params });
  return res.json();
}

