import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';

/**
 * Answers with a JSON body. The headers go to Node as one flat list: an object built per answer
 * (spread over the caller's extras) and walked key by key showed in the REST API's profile, and
 * most answers have no extras.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  const list: string[] = ['Content-Type', 'application/json', 'Content-Length', String(Buffer.byteLength(text))];
  if (headers) for (const name in headers) list.push(name, headers[name]);
  res.writeHead(status, list);
  res.end(text);
}

/**
 * Reads the whole body, refusing with 413 as soon as it passes `limit` bytes. The refusal closes
 * the connection: kept alive, it would wait for (and read) the rest of an oversized body.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (): HttpError => new HttpError(413, `Request body is larger than ${limit} bytes`, { Connection: 'close' });
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0]) : Buffer.concat(chunks)));
    // A client that goes away mid-body: an answer nobody reads, not a server error to log.
    req.on('error', () => reject(new HttpError(400, 'The request body did not arrive whole')));
  });
}

export function parseJsonObject(body: Buffer): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'Request body must be JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new HttpError(400, 'Request body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'Malformed URL encoding');
  }
}
