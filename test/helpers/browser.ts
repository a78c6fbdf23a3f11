import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium (`.ci/run` installs it when missing). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where the tests write the README's screenshots: docs/screenshots of the repository. */
export const SCREENSHOTS = fileURLToPath(new URL('../../../docs/screenshots/', import.meta.url));

export interface Browser {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

/** One headless Chromium with a fresh profile, shared by the tests of a file. */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'sb-chromium-'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1200, height: 820 },
    // --headless and --user-data-dir come from the launch options above.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Opens the dashboard at `base` (…/dashboard) and, unless the browser's session cookie already
 * signs it in, signs in with the password or admin token; waits for the overview.
 */
export async function signIn(page: Page, base: string, secret: string): Promise<void> {
  await page.goto(`${base}/`);
  await page.locator('#signin:not([hidden]), #overview:not([hidden])').first().waitFor();
  if (await page.locator('#overview').isVisible()) return;
  await page.fill('#password', secret);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#overview').waitFor();
}
