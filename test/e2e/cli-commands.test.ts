import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { exampleConfig } from '../../src/config/example.js';

// dist/test/e2e/cli-commands.test.js → dist/src/cli/main.js
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../../package.json', import.meta.url));

/** Runs the installed entry point to its end; these commands never start a server. */
function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as NodeJS.ErrnoException & { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('switchboard commands', () => {
  it('--help and -h print the settings and exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const { code, stdout } = await run([flag]);
      assert.equal(code, 0);
      assert.match(stdout, /^Usage:/m);
      assert.match(stdout, /--metrics-port, SWITCHBOARD_METRICS_PORT/);
    }
  });

  it('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version: string };
    assert.deepEqual(await run(['--version']), { code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('config check: exit 2 with every problem and its line; "ok" for the printed example', async () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'port: 70000\nadapter: carrier-pigeon\n');
    const refused = await run(['config', 'check', bad]);
    assert.equal(refused.code, 2);
    assert.match(refused.stdout, /bad\.yaml:1: port: /);
    assert.match(refused.stdout, /bad\.yaml:2: adapter: /);

    const good = join(dir, 'example.toml');
    writeFileSync(good, exampleConfig('toml')); // what `switchboard config example --format toml` prints
    assert.deepEqual(await run(['config', 'check', good]), { code: 0, stdout: 'ok\n', stderr: '' });
  });
});
