import { hash } from 'node:crypto';
import type { App } from '../core/app.js';
import { hmacSha256HexMatches } from '../util/hmac.js';
import { HttpError } from './errors.js';

/** Pusher allows this much clock difference between a signer and us. */
export const SIGNATURE_WINDOW_SECONDS = 600;

/** The string Pusher's REST signature covers: method, path and the sorted, unescaped query. */
export function stringToSign(method: string, path: string, query: URLSearchParams): string {
  const pairs: [string, string][] = [];
  for (const [key, value] of query) if (key !== 'auth_signature') pairs.push([key.toLowerCase(), value]);
  pairs.sort(byKey); // stable: a repeated key keeps the order it was sent in
  // One string built in place: the map/join of the pairs made a closure, an array and a string per pair.
  let text = `${method.toUpperCase()}\n${path}\n`;
  for (let i = 0; i < pairs.length; i++) text += `${i === 0 ? '' : '&'}${pairs[i][0]}=${pairs[i][1]}`;
  return text;
}

function byKey(a: [string, string], b: [string, string]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}

/** Checks a signed Pusher REST request; throws HttpError 401 naming what is wrong. */
export function verifyPusherSignature(app: App, method: string, path: string, query: URLSearchParams, body: Buffer, nowSeconds: number): void {
  const key = query.get('auth_key');
  const timestamp = query.get('auth_timestamp');
  const signature = query.get('auth_signature');
  if (!key || !timestamp || !signature) throw new HttpError(401, 'Missing auth_key, auth_timestamp or auth_signature');
  if (key !== app.key) throw new HttpError(401, 'Unknown auth_key');
  const version = query.get('auth_version');
  if (version !== null && version !== '1.0') throw new HttpError(401, 'Unsupported auth_version');
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > SIGNATURE_WINDOW_SECONDS) {
    throw new HttpError(401, `auth_timestamp is more than ${SIGNATURE_WINDOW_SECONDS} s away from the server's clock`);
  }
  if (body.length > 0) {
    const md5 = hash('md5', body, 'hex');
    if (query.get('body_md5') !== md5) throw new HttpError(401, 'body_md5 does not match the body');
  }
  if (!hmacSha256HexMatches(app.secret, stringToSign(method, path, query), signature)) throw new HttpError(401, 'Invalid signature');
}
