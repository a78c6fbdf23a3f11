import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

// dist/test/e2e/cli-logs.test.js → dist/src/cli/main.js
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BANNER = 'Switchboard listening on';
/** An SGR escape sequence (ESC [ … m): colour. */
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`);

/** The parent's environment without anything that would configure the server under test. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { TERM: 'xterm-256color' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_') && !['PORT', 'HOST', 'NO_COLOR', 'FORCE_COLOR'].includes(k)) env[k] = v;
  return env;
}

/**
 * Runs `command` until its output shows the start-up banner, then stops it; resolves with the
 * output. With `terminal`, the command runs under script(1): its stdout is a real pseudo-terminal.
 */
async function firstLines(t: TestContext, args: string[], terminal: boolean): Promise<string> {
  const node = [process.execPath, MAIN, '--host', '127.0.0.1', '--port', '0', ...args];
  const child = terminal
    ? spawn('script', ['-qfec', node.map((a) => `'${a}'`).join(' '), '/dev/null'], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(node[0], node.slice(1), { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  const exited = once(child, 'exit');
  for await (const chunk of child.stdout) {
    out += chunk as string;
    const at = out.indexOf(BANNER);
    if (at >= 0 && out.indexOf('\n', at) >= 0) break; // the banner's line is complete
  }
  child.kill('SIGTERM');
  await exited;
  return out;
}

describe('log format', () => {
  it('is JSON lines when stdout is not a terminal', async (t) => {
    const out = await firstLines(t, [], false);
    const banner = out.split('\n').find((line) => line.includes(BANNER)) as string;
    assert.equal((JSON.parse(banner) as { msg: string }).msg.startsWith(BANNER), true);
    assert.doesNotMatch(out, ANSI);
  });

  it('is coloured, human-readable lines on a terminal', async (t) => {
    const out = await firstLines(t, [], true);
    const banner = out.split('\n').find((line) => line.includes(BANNER)) as string;
    assert.match(banner, ANSI);
    assert.match(banner, /INFO/);
    assert.throws(() => JSON.parse(banner));
  });

  it('is pretty when asked with --log-format pretty, though stdout is not a terminal', async (t) => {
    const pretty = (await firstLines(t, ['--log-format', 'pretty'], false)).split('\n').find((line) => line.includes(BANNER)) as string;
    assert.match(pretty, /INFO/);
    assert.throws(() => JSON.parse(pretty));
  });
});
