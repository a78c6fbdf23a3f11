import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually } from '../helpers/wait.js';

const run = promisify(execFile);
// dist/test/e2e → the repository root
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** Installs and starts are bounded: a registry that does not answer fails the test instead of hanging it. */
const INSTALL_TIMEOUT_MS = 120_000;

describe('the npm package', () => {
  let dir: string;
  let tarball: string;
  let files: string[];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-pack-'));
    // --ignore-scripts: `prepare` would rebuild dist/ under the tests running from it; `npm test` built it already.
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, timeout: INSTALL_TIMEOUT_MS });
    const [packed] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    tarball = join(dir, packed.filename);
    files = packed.files.map((f) => f.path);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('ships the built server, its type declarations, the README and the license, nothing else', () => {
    const outside = files.filter((f) => !(f.startsWith('dist/src/') && (f.endsWith('.js') || f.endsWith('.d.ts'))) && !['package.json', 'README.md', 'LICENSE'].includes(f));
    assert.deepEqual(outside, []);
    for (const needed of ['dist/src/cli/main.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'README.md', 'LICENSE']) assert.ok(files.includes(needed), needed);
  });

  it('installs from the tarball into an empty folder without TypeScript, and `npx switchboard` serves', async (t) => {
    const app = mkdtempSync(join(dir, 'app-'));
    await run('npm', ['init', '-y'], { cwd: app, timeout: INSTALL_TIMEOUT_MS });
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: app, timeout: INSTALL_TIMEOUT_MS });
    // `prepare` (tsc) must not run for a tarball: the package's devDependencies are not installed.
    assert.equal(existsSync(join(app, 'node_modules', 'typescript')), false);

    // Its own process group, so the signal reaches the server behind npx's shell.
    const child = spawn('npx', ['--no-install', 'switchboard', '--host', '127.0.0.1', '--port', '0'], { cwd: app, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    t.after(() => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    });
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
    const port = await eventually(() => Number(/Switchboard listening on 127\.0\.0\.1:(\d+) /.exec(out)?.[1]) || undefined, `the banner; got ${out}`, 20_000);
    const res = await fetch(`http://127.0.0.1:${port}/up`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });
    // npx's own process dies of the signal; the server behind it drains and stops listening.
    process.kill(-(child.pid as number), 'SIGTERM');
    await exited;
    await eventually(() => fetch(`http://127.0.0.1:${port}/up`).then(() => false, () => true), 'the server to stop', 5_000);
  });
});
