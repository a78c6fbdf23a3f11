import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { appSchema } from '../../src/config/schema.js';
import { createServer, type Switchboard } from '../../src/index.js';
import { POSTGRES_URL, openStore, reachable, type StoreHarness } from '../helpers/app-stores.js';
import { connected, pusherClient, RawClient, serverSdk } from '../helpers/clients.js';
import { PROTOCOL_QUERY } from '../helpers/raw-pusher.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { eventually } from '../helpers/wait.js';

const known = appSchema.parse({ id: 'known', key: 'known-key', secret: 'known-secret-0123456789' });
const later = appSchema.parse({ id: 'later', key: 'later-key', secret: 'later-secret-0123456789' });

/** PostgreSQL behind a proxy the test cuts: the database really is unreachable, then back. */
describe('app store faults (PostgreSQL behind a proxy)', { skip: await reachable(5432, 'PostgreSQL') }, () => {
  let h: StoreHarness;
  let proxy: TcpProxy;
  let server: Switchboard;
  const lines: Array<{ msg: string; reason?: string; app?: string }> = [];
  const logged = (text: RegExp): number => lines.filter((l) => text.test(l.msg)).length;

  before(async () => {
    h = await openStore('postgres', [known, later]);
    proxy = await TcpProxy.start(5432);
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg: string }) });
    const url = new URL(POSTGRES_URL);
    url.port = String(proxy.port);
    server = await createServer({ host: '127.0.0.1', port: 0, ...h.config, appStoreUrl: url.toString(), appCacheTtlMs: 200, appStoreTimeoutMs: 1_000 }, { log });
  });
  after(async () => {
    await server.close();
    await proxy.close();
    await h.close();
  });

  const ready = async (): Promise<{ status: number; body: { appStore: boolean } }> => {
    const reply = await fetch(`${server.url}/ready`);
    return { status: reply.status, body: (await reply.json()) as { appStore: boolean } };
  };

  it('database down: cached apps keep working, unknown ones get a retryable 4100 and REST 503, /ready says so, logged once; back without a restart', { timeout: 30_000 }, async () => {
    const first = pusherClient(server, { key: known.key, sdk: serverSdk(server, known) });
    await connected(first);

    proxy.cut();
    // The cached app is re-read every TTL: the outage is noticed without any client asking.
    await eventually(async () => (await ready()).status === 503, '/ready reports the app store down');
    assert.equal((await ready()).body.appStore, false);

    const again = pusherClient(server, { key: known.key, sdk: serverSdk(server, known) });
    await connected(again);
    await serverSdk(server, known).trigger('news', 'update', { ok: true }); // REST by a cached app: 200 (the SDK throws otherwise)

    for (let i = 0; i < 3; i++) {
      const refused = await RawClient.connect(server, `/app/${later.key}?${PROTOCOL_QUERY}`);
      assert.equal(await refused.closed, 4100, 'retryable, not 4001');
    }
    const rest = await fetch(`${server.url}/apps/later/channels?auth_key=x`);
    assert.equal(rest.status, 503);
    assert.equal(rest.headers.get('retry-after'), '1');
    assert.equal(logged(/app store unreachable/), 1, 'one line for the outage, not one per request');

    proxy.restore();
    const back = pusherClient(server, { key: later.key, sdk: serverSdk(server, later) });
    await connected(back); // pusher-js retried after its back-off and got in
    await eventually(async () => (await ready()).status === 200, '/ready back to 200');
    assert.equal(logged(/app store reachable again/), 1);
    for (const c of [first, again, back]) c.disconnect();
  });

  it('a row that fails validation is refused for that app, with the reason logged once; other apps keep working', { timeout: 30_000 }, async () => {
    await h.insertRow?.({ id: 'broken', key: 'broken-key', secret: 'broken-secret-0123456789', webhooks: JSON.stringify([{ url: 'not a url' }]) });
    for (let i = 0; i < 2; i++) {
      const refused = await RawClient.connect(server, `/app/broken-key?${PROTOCOL_QUERY}`);
      assert.equal(await refused.closed, 4001);
    }
    const refusals = lines.filter((l) => /fails validation/.test(l.msg));
    assert.equal(refusals.length, 1);
    assert.equal(refusals[0]?.app, 'broken');
    assert.match(refusals[0]?.reason ?? '', /webhooks/);
    const fine = pusherClient(server, { key: known.key, sdk: serverSdk(server, known) });
    await connected(fine);
    fine.disconnect();
  });
});
