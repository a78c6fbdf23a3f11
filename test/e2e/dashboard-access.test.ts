import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import type { Switchboard } from '../../src/index.js';
import { launchChromium, SCREENSHOTS, signIn, type Browser } from '../helpers/browser.js';
import { freePort } from '../helpers/cluster.js';
import { startServer } from '../helpers/server.js';

const TOKEN = 'admin-token-0123456789abcdef';

/** Whether the page scrolls sideways: wider content than the viewport. */
function scrollsSideways(page: Page): Promise<boolean> {
  // Strings run in the page (the tests are compiled without the DOM's types).
  return page.evaluate<boolean>('document.documentElement.scrollWidth > document.documentElement.clientWidth');
}

describe('the dashboard on its own port, signed in with the admin token, by keyboard and on a phone', () => {
  let server: Switchboard;
  let browser: Browser;
  let page: Page;
  let base: string;
  const requested: string[] = [];

  before(async () => {
    // No dashboard password: the admin token alone turns the dashboard on.
    server = await startServer({ adminToken: TOKEN, dashboardPort: await freePort() });
    base = `http://127.0.0.1:${server.dashboardPort}/dashboard`;
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.setDefaultTimeout(10_000);
    page.on('request', (r) => requested.push(r.url()));
  });
  after(async () => {
    await browser.close();
    await server.close();
  });

  test('the dashboard port serves the dashboard alone; the main port does not serve it', async () => {
    assert.equal((await fetch(`${server.url}/dashboard/`)).status, 404);
    const root = await fetch(`http://127.0.0.1:${server.dashboardPort}/`, { redirect: 'manual' });
    assert.equal(root.status, 308);
    assert.equal(root.headers.get('location'), '/dashboard/');
    assert.equal((await fetch(`${base}/`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${server.dashboardPort}/apps/app-id/events`, { method: 'POST' })).status, 404, 'no REST API here');
    assert.equal((await fetch(`${base}/api/overview`)).status, 401);
  });

  test('a wrong token is refused; the admin token signs in with a session cookie, never a token in a URL', async () => {
    await page.goto(`${base}/`);
    await page.fill('#password', 'admin-token-wrong-0123456');
    await page.press('#password', 'Enter');
    await page.getByText('Wrong password or token').waitFor();
    assert.equal((await browser.context.cookies()).length, 0);
    await page.fill('#password', TOKEN);
    await page.press('#password', 'Enter');
    await page.locator('#overview').waitFor();
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'sb_dashboard');
    assert.ok(cookie?.httpOnly, 'an HttpOnly session cookie');
    assert.equal(cookie.value.includes(TOKEN), false);
    assert.equal(requested.filter((url) => url.includes(TOKEN)).length, 0, 'no request carried the token in its URL');
  });

  test('the config store: the Apps page lists the app read-only and says why; a write is refused (405)', async () => {
    await page.click('[data-tab=apps]');
    await page.getByText('read-only while the server runs').waitFor();
    await page.locator('#app-list tr[data-app="app-id"]').waitFor();
    assert.equal(await page.locator('#new-app').isVisible(), false);
    assert.equal(await page.locator('button[aria-label="Edit app app-id"]').count(), 0);
    const write = await browser.context.request.post(`${base}/api/apps/app-id/disable`, { data: {} });
    assert.equal(write.status(), 405);
    assert.match(((await write.json()) as { error: string }).error, /configuration file/);
  });

  test('keyboard only: Tab and Enter move through the navigation, sign out, and sign in again', async () => {
    // A fresh load: the focus starts at the top of the page.
    await page.goto(`${base}/`);
    await page.locator('#overview').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string>('document.activeElement?.textContent'), 'Overview', 'the first Tab reaches the navigation');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.locator('#apps').waitFor();
    assert.equal(await page.locator('[data-tab=apps]').getAttribute('aria-pressed'), 'true');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate<string>('document.activeElement?.textContent'), 'Sign out');
    await page.keyboard.press('Enter');
    await page.locator('#signin').waitFor();
    assert.equal(await page.evaluate<string>('document.activeElement?.id'), 'password', 'the sign-in form has the focus');
    await page.keyboard.type(TOKEN);
    await page.keyboard.press('Enter');
    // Signed in again, on the view it signed out from.
    await page.locator('#apps').waitFor();
  });

  test('at a phone width (390×844) no main view scrolls sideways and the navigation is on screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await signIn(page, base, TOKEN);
    for (const view of ['overview', 'apps', 'console'] as const) {
      await page.click(`[data-tab=${view}]`);
      await page.locator(`#${view}`).waitFor();
      assert.equal(await scrollsSideways(page), false, `${view} scrolls sideways`);
      for (const button of await page.locator('#tabs button').all()) {
        const box = await button.boundingBox();
        assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${(await button.textContent()) ?? ''} is on screen in ${view}`);
      }
      if (view === 'console') await page.screenshot({ path: join(SCREENSHOTS, 'phone.png') });
    }
  });
});
