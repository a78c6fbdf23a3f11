import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { pino } from 'pino';
import { createServer, type Switchboard } from '../../src/index.js';
import { openStore, reachable, type StoreHarness } from '../helpers/app-stores.js';
import { launchChromium, SCREENSHOTS, signIn, type Browser } from '../helpers/browser.js';
import { connected, pusherClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';

const PASSWORD = 'correct horse battery staple';
const APP_ID = 'made-in-page';

/** The pusher:error codes a pusher-js client was sent (the server sends one before its close code). */
function errorCodes(client: PusherJs): number[] {
  const codes: number[] = [];
  client.connection.bind('error', (e: { type?: string; data?: { code?: number } }) => {
    if (e.type === 'PusherError' && typeof e.data?.code === 'number') codes.push(e.data.code);
  });
  return codes;
}

describe('the Apps page on a PostgreSQL app store, in Chromium', { skip: await reachable(5432, 'PostgreSQL') }, () => {
  let store: StoreHarness;
  let server: Switchboard;
  let browser: Browser;
  let page: Page;
  const logLines: string[] = [];
  const clients: PusherJs[] = [];
  /** The app as the page made it: its key and its secrets, old and new. */
  const made = { key: '', secret: '', oldSecret: '' };

  before(async () => {
    store = await openStore('postgres', []);
    // Every log line is kept, at debug level: no secret may be in one.
    const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
    server = await createServer({ host: '127.0.0.1', port: 0, dashboardPassword: PASSWORD, ...store.config }, { log });
    browser = await launchChromium();
    page = await browser.context.newPage();
    page.setDefaultTimeout(10_000);
    await signIn(page, `${server.url}/dashboard`, PASSWORD);
    await page.click('[data-tab=apps]');
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await browser.close();
    await server.close();
    await store.close();
  });

  test('an app created in the page shows its secret once; a pusher-js client connects with its key and the secret signs', async () => {
    await page.getByText('Apps live in the postgres app store').waitFor();
    await page.click('#new-app');
    await page.fill('#af-id', APP_ID);
    await page.fill('#af-settings', '{"enableClientMessages": true}');
    await page.click('#app-form button[type=submit]');
    await page.locator('#secret-once').waitFor();
    made.key = (await page.locator('#secret-key').textContent()) ?? '';
    made.secret = (await page.locator('#secret-value').textContent()) ?? '';
    assert.ok(made.key.length > 0 && made.secret.length >= 32, 'a key and a long secret were made up');
    assert.equal((await store.store.find('id', APP_ID))?.ok, true, 'the app is in the database');
    await page.click('#secret-done');
    assert.equal(await page.locator('#secret-once').isVisible(), false);
    await page.locator(`#app-list tr[data-app="${APP_ID}"]`).waitFor();
    assert.equal((await page.content()).includes(made.secret), false, 'once dismissed, the secret is nowhere in the page');
    await page.screenshot({ path: join(SCREENSHOTS, 'apps.png') });

    const app = { id: APP_ID, key: made.key, secret: made.secret };
    const client = pusherClient(server, { key: made.key, sdk: serverSdk(server, app) });
    clients.push(client);
    await connected(client);
    await subscribed(client, 'private-orders');
    const received = new Promise<unknown>((resolve) => client.channel('private-orders').bind('placed', resolve));
    await serverSdk(server, app).trigger('private-orders', 'placed', { n: 1 });
    assert.deepEqual(await received, { n: 1 });
  });

  test('an edit from the page is checked as the admin API checks it: a bad value is refused with the reason, a good one stored', async () => {
    await page.click(`button[aria-label="Edit app ${APP_ID}"]`);
    await page.fill('#af-settings', '{"maxConnections": -1}');
    await page.click('#app-form button[type=submit]');
    await page.locator('#app-form-error', { hasText: 'maxConnections' }).waitFor();
    await page.fill('#af-settings', '{"maxConnections": 50}');
    await page.click('#app-form button[type=submit]');
    await page.locator('#app-form').waitFor({ state: 'hidden' });
    const stored = await store.store.find('id', APP_ID);
    assert.equal(stored?.ok && stored.app.maxConnections, 50);
    assert.equal(stored?.ok && stored.app.secret, made.secret, 'an edit keeps the secret');
  });

  test('disabling the app from the page closes its client with 4003; enabling lets clients back', async () => {
    const client = clients[0];
    assert.ok(client, 'the client of the first test');
    const codes = errorCodes(client);
    await page.click(`button[aria-label="Disable app ${APP_ID}"]`);
    await eventually(() => codes.includes(4003), 'pusher:error 4003 to the open client');
    await eventually(() => client.connection.state !== 'connected', 'the client disconnected');
    await page.locator(`#app-list tr[data-app="${APP_ID}"] td`, { hasText: 'no' }).first().waitFor();
    await page.click(`button[aria-label="Enable app ${APP_ID}"]`);
    await page.locator(`button[aria-label="Disable app ${APP_ID}"]`).waitFor();
    const again = pusherClient(server, { key: made.key, sdk: serverSdk(server, { id: APP_ID, key: made.key, secret: made.secret }) });
    clients.push(again);
    await connected(again);
  });

  test('rotating from the page (pressed twice) shows the new secret once; the old secret signs no more', async () => {
    const rotate = page.locator(`button[aria-label="Rotate the secret of app ${APP_ID}"]`);
    await rotate.click();
    await page.getByText('Press again to rotate').waitFor();
    assert.equal(await page.locator('#secret-once').isVisible(), false, 'one press rotates nothing');
    await rotate.click();
    await page.locator('#secret-once').waitFor();
    made.oldSecret = made.secret;
    made.secret = (await page.locator('#secret-value').textContent()) ?? '';
    assert.ok(made.secret.length >= 32 && made.secret !== made.oldSecret, 'a new secret');
    await page.click('#secret-done');
    const old = serverSdk(server, { id: APP_ID, key: made.key, secret: made.oldSecret });
    await assert.rejects(old.trigger('public', 'e', {}), (err: { status?: number }) => err.status === 401);
    const fresh = await serverSdk(server, { id: APP_ID, key: made.key, secret: made.secret }).trigger('public', 'e', {});
    assert.equal(fresh.status, 200);
  });

  test('each change is logged (an audit line), and no secret made or rotated in the page reached a log line', () => {
    const changes = logLines.filter((l) => l.includes('"msg":"app changed"')).map((l) => (JSON.parse(l) as { change: string }).change);
    assert.deepEqual(changes, ['create', 'edit', 'disable', 'enable', 'rotate-secret']);
    for (const secret of [made.secret, made.oldSecret]) assert.equal(logLines.filter((l) => l.includes(secret)).length, 0);
  });

  test('a cross-site write is refused: a foreign Origin, or a body that is not JSON', async () => {
    const cookie = (await browser.context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const url = `${server.url}/dashboard/api/apps/${APP_ID}/disable`;
    assert.equal((await fetch(url, { method: 'POST', headers: { cookie, 'Content-Type': 'application/json', Origin: 'http://evil.example' }, body: '{}' })).status, 403);
    assert.equal((await fetch(url, { method: 'POST', headers: { cookie, 'Content-Type': 'text/plain' }, body: '{}' })).status, 415);
    const stored = await store.store.find('id', APP_ID);
    assert.equal(stored?.ok && stored.app.enabled, true);
  });
});
