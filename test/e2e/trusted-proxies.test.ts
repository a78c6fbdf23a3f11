import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import type { RawClient } from '../helpers/clients.js';
import { api, refusal } from '../helpers/native.js';
import { rawClient } from '../helpers/raw-pusher.js';
import { APP, startServer } from '../helpers/server.js';

const TOKEN = 'proxy-test-token-0123456789';
const from = (address: string) => ({ headers: { 'X-Forwarded-For': address } });

/**
 * Behind a load balancer every TCP peer is the balancer. With its address in trustedProxies,
 * per-IP limits count the clients it reports; without, X-Forwarded-For is not believed.
 */
describe('trustedProxies: per-IP limits behind a proxy', () => {
  const servers: Switchboard[] = [];
  const clients: RawClient[] = [];
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
  });

  it('counts connections per reported client when the peer is a trusted proxy', async () => {
    const server = await startServer({ maxConnectionsPerIp: 1, trustedProxies: ['127.0.0.1', '::1'] });
    servers.push(server);
    const a = await rawClient(server, APP.key, from('203.0.113.1'));
    const b = await rawClient(server, APP.key, from('203.0.113.2'));
    clients.push(a, b);
    assert.match(await a.socketId(), /^\d+\.\d+$/);
    assert.match(await b.socketId(), /^\d+\.\d+$/);
    const again = await refusal(server, '/ws', from('203.0.113.1'));
    assert.equal(again.status, 429);
  });

  it('does not believe X-Forwarded-For from a peer that is not trusted', async () => {
    const server = await startServer({ maxConnectionsPerIp: 1 });
    servers.push(server);
    const a = await rawClient(server, APP.key, from('203.0.113.1'));
    clients.push(a);
    await a.socketId();
    const forged = await refusal(server, '/ws', from('203.0.113.2'));
    assert.equal(forged.status, 429);
  });

  it('rate-limits the HTTP API per reported client', async () => {
    const server = await startServer({ apiRequestsPerIpPerSecond: 2, trustedProxies: ['127.0.0.0/8', '::1'], apps: [{ ...APP, apiToken: TOKEN }] });
    servers.push(server);
    // Two calls from each of three clients: within every client's budget, so all pass. Counted by
    // the proxy's address instead, at most four of the six could (two per second, a boundary at worst).
    const calls = ['203.0.113.1', '203.0.113.2', '203.0.113.3'].flatMap((ip) => [ip, ip]);
    const replies = await Promise.all(calls.map((ip) => api(server, 'GET', '/stats', { token: TOKEN, ...from(ip) })));
    assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  });
});
