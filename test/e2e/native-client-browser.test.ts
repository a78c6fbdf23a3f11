import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { launchChromium, type Browser } from '../helpers/browser.js';
import { nativeClientFile } from '../helpers/client-packages.js';
import { CHAT_HISTORY, numbered } from '../helpers/history.js';
import { api } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';

const TOKEN = 'native-client-browser-token-01';

/** A page that loads the library as a module and records what a client on `channel` receives. */
function page(wsUrl: string, channel: string): string {
  return `<!doctype html><meta charset="utf-8"><title>client</title>
<script type="module">
  import { SwitchboardClient } from './client.js';
  window.got = [];
  window.recoveries = [];
  window.client = new SwitchboardClient({ url: ${JSON.stringify(wsUrl)}, minDelayMs: 50, maxDelayMs: 400 });
  window.client.subscribe(${JSON.stringify(channel)}, {
    onMessage: (m) => window.got.push(m.data),
    onRecovery: (r) => window.recoveries.push([r.recovered, r.resumed]),
  });
</script>`;
}

/** The native client library (clients/js) in Chromium, with the browser's own WebSocket. */
describe('native client library in Chromium', () => {
  let server: Switchboard;
  let browser: Browser;
  let pages: Server;
  let proxy: TcpProxy;

  before(async () => {
    server = await startServer({ apps: [{ ...APP, apiToken: TOKEN, history: CHAT_HISTORY }] });
    proxy = await TcpProxy.start(server.port);
    const library = readFileSync(nativeClientFile);
    pages = createServer((req, res) => {
      if (req.url === '/client.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(library);
      else res.writeHead(200, { 'content-type': 'text/html' }).end(page(`ws://127.0.0.1:${proxy.port}/ws`, 'chat-browser'));
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
    await new Promise((resolve) => pages.close(resolve));
    await proxy.close();
    await server.close();
  });

  it('connects, receives, and after a dropped connection reconnects and resumes with nothing missed', async () => {
    const tab = await browser.context.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(`http://127.0.0.1:${(pages.address() as AddressInfo).port}/`);
    const broadcast = async (from: number, to: number) => {
      for (let i = from; i <= to; i += 1) assert.equal((await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'chat-browser', data: { i } } })).status, 200);
    };
    const count = (n: number) => tab.waitForFunction((want) => (globalThis as unknown as { got: unknown[] }).got.length >= want, n, { timeout: 10_000 });
    await tab.waitForFunction(() => (globalThis as unknown as { recoveries: unknown[] }).recoveries.length === 1, undefined, { timeout: 10_000 });
    await broadcast(1, 2);
    await count(2);

    proxy.cut();
    await tab.waitForFunction(() => (globalThis as unknown as { client: { state: string } }).client.state === 'reconnecting', undefined, { timeout: 10_000 });
    await broadcast(3, 5);
    proxy.restore();
    await count(5);
    await broadcast(6, 6);
    await count(6);
    const seen = await tab.evaluate(() => {
      const w = globalThis as unknown as { got: unknown[]; recoveries: unknown[] };
      return { got: w.got, recoveries: w.recoveries };
    });
    assert.deepEqual(seen.got, numbered(1, 6));
    assert.deepEqual(seen.recoveries, [
      [false, false],
      [true, true],
    ]);
    assert.deepEqual(errors, []);
    await tab.close();
  });
});
