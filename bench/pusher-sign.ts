// Pusher HTTP API request signing and channel auth, as documented at
// https://pusher.com/docs/channels/library_auth_reference/rest-api/ .

import { createHash, createHmac } from 'node:crypto';

export interface AppCredentials {
  appId: string;
  key: string;
  secret: string;
}

/**
 * Returns "path?query" for a signed request. The string to sign uses the raw
 * (not URL-encoded) "k=v" pairs sorted by key, which is what Pusher servers
 * rebuild on their side; our parameter values are URL-safe anyway.
 */
export function signedPath(
  creds: AppCredentials,
  method: string,
  path: string,
  body: string,
  timestampSeconds: number = Math.floor(Date.now() / 1000),
  /** The call's own query parameters (URL-safe values), signed with the auth ones. */
  extra: Record<string, string> = {},
): string {
  const params: Record<string, string> = {
    ...extra,
    auth_key: creds.key,
    auth_timestamp: String(timestampSeconds),
    auth_version: '1.0',
  };
  if (body.length > 0) params.body_md5 = createHash('md5').update(body).digest('hex');
  const query = Object.keys(params)
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  const signature = createHmac('sha256', creds.secret)
    .update(`${method.toUpperCase()}\n${path}\n${query}`)
    .digest('hex');
  return `${path}?${query}&auth_signature=${signature}`;
}

/** Auth for private-/presence- subscriptions: key:hex(HMAC(secret, socket_id:channel[:channel_data])). */
export function channelAuth(creds: AppCredentials, socketId: string, channel: string, channelData?: string): string {
  const toSign = channelData === undefined ? `${socketId}:${channel}` : `${socketId}:${channel}:${channelData}`;
  return `${creds.key}:${createHmac('sha256', creds.secret).update(toSign).digest('hex')}`;
}
