import type Pusher from 'pusher';
import type { PusherJs, RawClient } from './clients.js';

/** Helpers for user sign-in, client events and Echo tests. */

export type RawMessage = RawClient['messages'][number];

/** A frame's `data`, decoded once more when the server double-encoded it (Pusher's rule). */
export function dataOf(m: RawMessage): unknown {
  if (typeof m.data !== 'string') return m.data;
  try {
    return JSON.parse(m.data);
  } catch {
    return m.data;
  }
}

/** The `{code, message}` of a pusher:error frame. */
export function errorOf(m: RawMessage): { code: number; message: string } {
  return dataOf(m) as { code: number; message: string };
}

/** Waits until `raw` has received `count` messages matching `pred`; resolves with all of them. */
export async function received(raw: RawClient, pred: (m: RawMessage) => boolean, count: number, timeoutMs = 3000): Promise<RawMessage[]> {
  await raw.next(() => raw.messages.filter(pred).length >= count, timeoutMs);
  return raw.messages.filter(pred);
}

/** Sends pusher:signin for `user`, signed by the server SDK for this socket. */
export async function rawSignIn(raw: RawClient, sdk: Pusher, user: Pusher.UserChannelData): Promise<void> {
  const socketId = await raw.socketId();
  raw.send({ event: 'pusher:signin', data: sdk.authenticateUser(socketId, user) });
}

/** Signs a raw client in and waits for its `count`-th pusher:signin_success. */
export async function rawSignedIn(raw: RawClient, sdk: Pusher, user: Pusher.UserChannelData, count = 1): Promise<RawMessage> {
  await rawSignIn(raw, sdk, user);
  const all = await received(raw, (m) => m.event === 'pusher:signin_success', count);
  return all[count - 1];
}

/**
 * Subscribes a raw client (signing private and presence channels with the server SDK) and
 * waits for the channel's pusher_internal:subscription_succeeded.
 */
export async function rawSubscribed(raw: RawClient, channel: string, sdk?: Pusher, presence?: Pusher.PresenceChannelData): Promise<RawMessage> {
  const data: Record<string, unknown> = { channel };
  if (sdk) Object.assign(data, sdk.authorizeChannel(await raw.socketId(), channel, presence));
  raw.send({ event: 'pusher:subscribe', data });
  return raw.next(
    (m) => (m.event === 'pusher_internal:subscription_succeeded' || m.event === 'pusher:subscription_error') && m.channel === channel,
  ).then((m) => {
    if (m.event !== 'pusher_internal:subscription_succeeded') throw new Error(`subscription to ${channel} failed: ${JSON.stringify(m.data)}`);
    return m;
  });
}

/**
 * Asks a pusher-js client to sign in and resolves once pusher:signin_success came and the
 * client's `#server-to-user-<id>` channel is subscribed (so sendToUser reaches it).
 */
export function pusherSignedIn(client: PusherJs, userId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { event: string; channel?: string }): void => {
      if (m.event === 'pusher_internal:subscription_succeeded' && m.channel === `#server-to-user-${userId}`) {
        client.connection.unbind('message', onMessage);
        resolve();
      }
      if (m.event === 'pusher:subscription_error' && m.channel === `#server-to-user-${userId}`) reject(new Error('server-to-user subscription refused'));
    };
    client.connection.bind('message', onMessage);
    client.connection.bind('disconnected', () => reject(new Error('disconnected before sign-in completed')));
    client.signin();
  });
}

/** A unique marker event name, so "nothing else arrived before it" can be asserted. */
let markers = 0;
export function markerName(): string {
  markers += 1;
  return `marker-${markers}`;
}
