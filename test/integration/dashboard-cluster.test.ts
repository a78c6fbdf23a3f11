import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Switchboard } from '../../src/index.js';
import { launchChromium, signIn, type Browser } from '../helpers/browser.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { uniquePrefix } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';
import { startServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';

/** The overview's node table as the page shows it: node id → connections. */
async function nodeTable(page: Page): Promise<Array<[string, string]>> {
  const rows: Array<[string, string]> = [];
  for (const row of await page.locator('#nodes tbody tr').all()) rows.push([(await row.getAttribute('data-node')) ?? '', (await row.locator('td').nth(1).textContent()) ?? '']);
  return rows;
}

describe('web dashboard over a two-node Redis cluster', () => {
  const nodes: Switchboard[] = [];
  let browser: Browser;
  let client: PusherJs;

  before(async () => {
    const clusterPrefix = uniquePrefix('dash');
    for (let i = 0; i < 2; i++) nodes.push(await startServer({ dashboardPassword: PASSWORD, adapter: 'redis', redisUrl: 'redis://127.0.0.1:6379', clusterPrefix, heartbeatIntervalMs: 200, nodeTimeoutMs: 2_000 }));
    browser = await launchChromium();
  });
  after(async () => {
    client?.disconnect();
    await browser.close();
    for (const n of nodes) await n.close();
  });

  test('both nodes show the same overview: both nodes, and a client of node B counted on node A', async () => {
    const [a, b] = nodes as [Switchboard, Switchboard];
    client = pusherClient(b);
    await connected(client);
    await subscribed(client, 'cluster-wide');
    const pages = [await browser.context.newPage(), await browser.context.newPage()] as [Page, Page];
    for (const p of pages) p.setDefaultTimeout(10_000);
    await signIn(pages[0], `${a.url}/dashboard`, PASSWORD);
    // Cookies are not per port: node B accepts node A's session (its key comes from the shared password).
    await pages[1].goto(`${b.url}/dashboard/`);
    await pages[1].locator('#overview').waitFor();
    const expected = [
      [a.hub.nodeId, '0'],
      [b.hub.nodeId, '1'],
    ].sort((x, y) => x[0].localeCompare(y[0]));
    for (const p of pages) {
      await p.getByText('Ready · 2 node(s)').waitFor();
      await p.locator('#t-connections', { hasText: '1' }).waitFor();
      await p.locator('#t-channels', { hasText: '1' }).waitFor();
      assert.deepEqual(await nodeTable(p), expected);
    }
    for (const p of pages) await p.close();
  });

  test("a REST publish through node B appears in the debug console opened on node A; nobody watching, no node taps", async () => {
    const [a, b] = nodes as [Switchboard, Switchboard];
    // The overview pages of the first test opened no console.
    assert.equal(b.hub.tap.watched, false, 'no console open anywhere: B builds no console lines');
    const page = await browser.context.newPage();
    page.setDefaultTimeout(10_000);
    await signIn(page, `${a.url}/dashboard`, PASSWORD);
    await page.click('[data-tab=console]');
    // "Live" comes once every node has heard of the console.
    await page.locator('#console-status', { hasText: 'Live' }).waitFor();
    assert.equal(b.hub.tap.watched, true, 'B heard of the console on A');
    await serverSdk(b).trigger('cluster-wide', 'through-b', { n: 1 });
    const line = page.locator('#log li[data-type=api_message]', { hasText: 'through-b' });
    await line.waitFor();
    assert.equal(await line.getAttribute('data-node'), b.hub.nodeId);
    await page.close();
    await eventually(() => !b.hub.tap.watched && !a.hub.tap.watched, 'the console closed: no node taps any more', 10_000);
  });
});
