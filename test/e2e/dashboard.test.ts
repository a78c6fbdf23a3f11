import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Switchboard } from '../../src/index.js';
import { launchChromium, SCREENSHOTS, type Browser } from '../helpers/browser.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';

const PASSWORD = 'correct horse battery staple';

describe('web dashboard in Chromium', () => {
  let server: Switchboard;
  let browser: Browser;
  let page: Page;
  let base: string;
  const clients: PusherJs[] = [];

  before(async () => {
    server = await startServer({ dashboardPassword: PASSWORD });
    base = `${server.url}/dashboard`;
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.setDefaultTimeout(10_000);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await browser.close();
    await server.close();
  });

  test('without a session the page shows only the sign-in form and every API answers 401', async () => {
    await page.goto(base);
    assert.equal(new URL(page.url()).pathname, '/dashboard/');
    await page.locator('#signin-form').waitFor();
    assert.equal(await page.locator('#tabs').isVisible(), false);
    assert.equal(await page.locator('#overview').isVisible(), false);
    for (const path of ['/api/overview', '/api/overview/stream', '/api/apps', `/api/apps/${APP.id}`, `/api/apps/${APP.id}/console`]) {
      const res = await fetch(base + path);
      assert.equal(res.status, 401, path);
    }
    const publish = await fetch(`${base}/api/apps/${APP.id}/publish`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"channel":"c","event":"e","data":"d"}' });
    assert.equal(publish.status, 401);
    // A forged cookie is no session either.
    const forged = await fetch(`${base}/api/overview`, { headers: { cookie: `sb_dashboard=${Date.now() + 60_000}.x.AAAA` } });
    assert.equal(forged.status, 401);
    await page.screenshot({ path: join(SCREENSHOTS, 'sign-in.png') });
  });

  test('a wrong password is refused and no session cookie is set', async () => {
    await page.fill('#password', 'not the password');
    await page.click('#signin-form button[type=submit]');
    await page.getByText('Wrong password').waitFor();
    assert.equal((await browser.context.cookies()).length, 0);
    assert.equal(await page.locator('#tabs').isVisible(), false);
  });

  test('a cross-site sign-in (form encoding or a foreign Origin) is refused', async () => {
    const form = await fetch(`${base}/api/login`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `password=${PASSWORD}` });
    assert.equal(form.status, 415);
    const foreign = await fetch(`${base}/api/login`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: JSON.stringify({ password: PASSWORD }) });
    assert.equal(foreign.status, 403);
  });

  test('signing in shows the overview with this node', async () => {
    await page.fill('#password', PASSWORD);
    await page.click('#signin-form button[type=submit]');
    await page.locator('#overview').waitFor();
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'sb_dashboard');
    assert.ok(cookie?.httpOnly, 'the session cookie is HttpOnly');
    assert.equal(cookie?.sameSite, 'Strict');
    await page.locator(`#nodes tr[data-node="${server.hub.nodeId}"]`).waitFor();
    await page.getByText('Ready · 1 node(s)').waitFor();
  });

  test('a pusher-js client that connects and subscribes shows up, with its channel', async () => {
    const client = pusherClient(server);
    clients.push(client);
    await connected(client);
    await subscribed(client, 'orders');
    await page.locator('#t-connections', { hasText: '1' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png') });
    await page.click('[data-tab=apps]');
    await page.click(`button[aria-label="Open app ${APP.id}"]`);
    const row = page.locator('#channels tr[data-channel="orders"]');
    await row.waitFor();
    assert.equal(await row.locator('td').first().textContent(), '1');
    await page.screenshot({ path: join(SCREENSHOTS, 'app.png') });
  });

  test('an event sent from the event creator reaches the client and the debug console', async () => {
    const client = clients[0];
    assert.ok(client, 'the client of the previous test');
    const received = new Promise<unknown>((resolve) => client.channel('orders').bind('shipped', resolve));
    await page.click('[data-tab=console]');
    await page.getByText('Live').first().waitFor();
    await page.fill('#ev-channel', 'orders');
    await page.fill('#ev-name', 'shipped');
    await page.fill('#ev-data', '{"order":42}');
    await page.click('#creator button[type=submit]');
    assert.deepEqual(await received, { order: 42 });
    await page.locator('#log li[data-type=api_message]', { hasText: 'shipped' }).waitFor();
  });

  test('a REST publish appears in the debug console, and pausing holds new lines until resumed', async () => {
    await serverSdk(server).trigger('orders', 'rest-publish', { n: 1 });
    await page.locator('#log li[data-type=api_message]', { hasText: 'rest-publish' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'console.png') });
    await page.click('#pause');
    await serverSdk(server).trigger('orders', 'while-paused', { n: 2 });
    await page.getByText('Paused (1 new)').waitFor();
    assert.equal(await page.locator('#log li', { hasText: 'while-paused' }).count(), 0);
    await page.click('#pause');
    await page.locator('#log li', { hasText: 'while-paused' }).waitFor();
  });
});
