import { createHash, createHmac } from 'node:crypto';
import { request, type Agent, type IncomingHttpHeaders } from 'node:http';
import type { Switchboard } from '../../src/index.js';
import { APP } from './server.js';

/**
 * Pusher REST requests signed here with node:crypto, independently of the server's own signer,
 * so a signing bug on the server side fails the tests instead of agreeing with itself.
 */

export interface Credentials {
  readonly id: string;
  readonly key: string;
  readonly secret: string;
}

export interface SignedRequest {
  method?: 'GET' | 'POST';
  /** Path after `/apps/{id}`, e.g. `/events`. */
  path: string;
  /** Extra query parameters (they are signed too). */
  query?: Record<string, string>;
  /** An object is sent as JSON; a string or Buffer as it is. */
  body?: unknown;
  app?: Credentials;
  /** Seconds since the epoch; defaults to now. */
  timestamp?: number;
  /** The body whose MD5 goes into body_md5 (defaults to the body sent). */
  md5Of?: string | Buffer;
  /** Applied to the query after signing, to forge or drop parameters. */
  tamper?: (query: Map<string, string>) => void;
  agent?: Agent;
  headers?: Record<string, string>;
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (undefined when it is not JSON). */
  readonly json: unknown;
  /** True when the request went over a socket an earlier request had used. */
  readonly reusedSocket: boolean;
  readonly localPort: number | undefined;
}

export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** hex HMAC-SHA256 over `METHOD\npath\nk=v&…` with keys lower-cased and sorted, values unescaped. */
export function pusherSignature(secret: string, method: string, path: string, params: Map<string, string>): string {
  const pairs = [...params]
    .filter(([k]) => k !== 'auth_signature')
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const text = `${method}\n${path}\n${pairs.map(([k, v]) => `${k}=${v}`).join('&')}`;
  return createHmac('sha256', secret).update(text).digest('hex');
}

function bodyBytes(body: unknown): Buffer | undefined {
  if (body === undefined) return undefined;
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
}

/** The signed path+query for a request to `/apps/{id}{path}`. */
export function signedPath(opts: SignedRequest): string {
  const app = opts.app ?? APP;
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  const path = `/apps/${app.id}${opts.path}`;
  const body = bodyBytes(opts.body);
  const params = new Map<string, string>([
    ['auth_key', app.key],
    ['auth_timestamp', String(opts.timestamp ?? Math.floor(Date.now() / 1000))],
    ['auth_version', '1.0'],
  ]);
  const md5Source = opts.md5Of ?? body;
  if (md5Source !== undefined && md5Source.length > 0) params.set('body_md5', md5Hex(md5Source));
  for (const [k, v] of Object.entries(opts.query ?? {})) params.set(k, v);
  params.set('auth_signature', pusherSignature(app.secret, method, path, params));
  opts.tamper?.(params);
  return `${path}?${new URLSearchParams([...params]).toString()}`;
}

/** Sends a signed request to the server and reads the whole reply. */
export function signedRequest(server: Switchboard, opts: SignedRequest): Promise<Reply> {
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  const body = bodyBytes(opts.body);
  return send(server, method, signedPath(opts), body, opts.agent, opts.headers);
}

/** An unsigned request (health checks, or raw edge cases). */
export function send(server: Switchboard, method: string, path: string, body?: Buffer, agent?: Agent, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: server.port,
        method,
        path,
        ...(agent ? { agent } : {}),
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          // Without a length the body goes chunked, which the server cannot refuse up front.
          ...(body && !('transfer-encoding' in headers) ? { 'content-length': String(body.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const localPort = res.socket?.localPort;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json, reusedSocket: req.reusedSocket, localPort });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
