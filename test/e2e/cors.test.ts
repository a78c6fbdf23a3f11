import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { APP, startServer } from '../helpers/server.js';
import { send, signedRequest, type Reply } from '../helpers/signed-request.js';

const TOKEN = 'cors-test-token-0123456789';
const OTHER = { id: 'other-app', key: 'other-key', secret: 'other-secret' } as const;

/** The preflight a browser sends before a cross-origin POST with these headers. */
function preflight(server: Switchboard, path: string, origin: string, headers = 'authorization,content-type'): Promise<Reply> {
  return send(server, 'OPTIONS', path, undefined, undefined, {
    Origin: origin,
    'Access-Control-Request-Method': 'POST',
    'Access-Control-Request-Headers': headers,
  });
}

/** What a browser's fetch() of the native API with a Bearer token and a JSON body sends after the preflight. */
function browserBroadcast(server: Switchboard, origin: string): Promise<Reply> {
  return send(server, 'POST', '/broadcast', Buffer.from(JSON.stringify({ channel: 'news', data: 'hi' })), undefined, {
    Origin: origin,
    Authorization: `Bearer ${TOKEN}`,
    'Content-Type': 'application/json',
  });
}

describe('CORS on the HTTP APIs', () => {
  it('answers the preflight of an allowed origin with the methods and headers the native API needs, then the actual request', async (t) => {
    const server = await startServer({ corsOrigins: ['https://app.example.com'], apps: [{ ...APP, apiToken: TOKEN }] });
    t.after(() => server.close());
    const pre = await preflight(server, '/broadcast', 'https://app.example.com');
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(pre.headers['access-control-allow-methods']), /\bPOST\b/);
    const allowed = String(pre.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/);
    assert.ok(allowed.includes('authorization') && allowed.includes('content-type'), String(allowed));
    assert.equal(pre.headers.vary, 'Origin');

    const res = await browserBroadcast(server, 'https://app.example.com');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(res.headers['access-control-expose-headers'], 'Retry-After');
  });

  it('matches sub-domain patterns by whole labels: example.com.evil.com, evil-example.com, the apex and another scheme are refused', async (t) => {
    const server = await startServer({ corsOrigins: ['https://*.example.com'], apps: [{ ...APP, apiToken: TOKEN }] });
    t.after(() => server.close());
    for (const origin of ['https://shop.example.com', 'https://a.b.example.com', 'https://SHOP.example.com']) {
      const pre = await preflight(server, '/broadcast', origin);
      assert.equal(pre.status, 204, origin);
      assert.equal(pre.headers['access-control-allow-origin'], origin);
    }
    for (const origin of ['https://example.com.evil.com', 'https://evil-example.com', 'https://example.com', 'http://shop.example.com', 'https://shop.example.com:8443', 'null']) {
      const pre = await preflight(server, '/broadcast', origin);
      assert.equal(pre.status, 403, origin);
      assert.equal(pre.headers['access-control-allow-origin'], undefined, origin);
      // The actual request is answered (its token decides), but without the header a browser needs to read it.
      const res = await browserBroadcast(server, origin);
      assert.equal(res.status, 200);
      assert.equal(res.headers['access-control-allow-origin'], undefined, origin);
    }
  });

  it("applies an app's own origins to its Pusher REST paths only", async (t) => {
    const server = await startServer({ apps: [{ ...APP, corsOrigins: ['https://dashboard.example.org'] }, OTHER] });
    t.after(() => server.close());
    const origin = 'https://dashboard.example.org';
    const mine = await preflight(server, `/apps/${APP.id}/events`, origin, 'content-type');
    assert.equal(mine.status, 204);
    assert.equal(mine.headers['access-control-allow-origin'], origin);
    assert.equal((await preflight(server, `/apps/${OTHER.id}/events`, origin, 'content-type')).status, 403);

    const res = await signedRequest(server, { method: 'POST', path: '/events', body: { name: 'e', channel: 'c', data: '{}' }, headers: { Origin: origin } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['access-control-allow-origin'], origin);
    const other = await signedRequest(server, { method: 'POST', path: '/events', app: OTHER, body: { name: 'e', channel: 'c', data: '{}' }, headers: { Origin: origin } });
    assert.equal(other.status, 200, other.text);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('is off unless configured: no CORS headers, and OPTIONS is not answered as a preflight', async (t) => {
    const server = await startServer({ apps: [{ ...APP, apiToken: TOKEN }] });
    t.after(() => server.close());
    const pre = await preflight(server, '/broadcast', 'https://app.example.com');
    assert.equal(pre.status, 404);
    assert.equal(pre.headers['access-control-allow-origin'], undefined);
    const res = await browserBroadcast(server, 'https://app.example.com');
    assert.equal(res.status, 200);
    assert.equal(res.headers['access-control-allow-origin'], undefined);
    assert.equal(res.headers.vary, undefined);
  });
});
