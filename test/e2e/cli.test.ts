import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';
import { REDIS_SERVER, freePort, redisBinariesMissing } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';

// dist/test/e2e/cli.test.js → dist/src/cli/main.js
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BANNER = /^Switchboard listening on (\S+):(\d+) /;

/** The parent's environment without anything that would configure the server under test. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_') && k !== 'PORT' && k !== 'HOST') env[k] = v;
  return { ...env, ...extra };
}

interface Running {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function run(t: TestContext, args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/**
 * Waits for the pino banner line on stdout; returns the parsed line and the bound host/port. The
 * deadline only catches a server that never starts: a loaded machine takes seconds to load Node.
 */
async function banner(r: Running, timeoutMs = 20_000): Promise<{ line: Record<string, unknown>; host: string; port: number }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const text of r.stdout().split('\n')) {
      if (!text.trim()) continue;
      const line = JSON.parse(text) as Record<string, unknown>; // every stdout line is pino JSON
      const m = typeof line.msg === 'string' ? BANNER.exec(line.msg) : null;
      if (m) return { line, host: m[1], port: Number(m[2]) };
    }
    if (r.child.exitCode !== null) throw new Error(`exited ${r.child.exitCode} before the banner; stderr: ${r.stderr()}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no banner in ${timeoutMs} ms; stdout: ${r.stdout()}`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([once(r.child.stdout as NodeJS.ReadableStream, 'data'), r.exit, new Promise((resolve) => (timer = setTimeout(resolve, left)))]);
    clearTimeout(timer);
  }
}

describe('switchboard CLI', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('starts on PORT=0, logs the bound port as JSON, answers /up, and exits 0 on SIGTERM', async (t) => {
    const r = run(t, [], { PORT: '0', HOST: '127.0.0.1' });
    const { line, host, port } = await banner(r);
    assert.equal(host, '127.0.0.1');
    assert.ok(port > 0 && port < 65536, `bound port ${port}`);
    assert.equal(line.level, 30);
    // Loopback only, so the default secret is no warning; nothing else is either.
    assert.ok(!r.stdout().includes('"level":40'), r.stdout());
    assert.equal(line.service, 'switchboard');
    assert.match(line.msg as string, /app-id \(key app-key\)/);

    const res = await fetch(`http://127.0.0.1:${port}/up`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true });

    const started = Date.now();
    r.child.kill('SIGTERM');
    const { code, signal } = await r.exit;
    assert.equal(signal, null);
    assert.equal(code, 0, r.stderr());
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms to stop`);
    assert.ok(!r.stdout().includes('app-secret'), 'the secret never reaches the log');
    assert.equal(r.stderr(), '');
  });

  it('serves Prometheus metrics on SWITCHBOARD_METRICS_PORT and says where', async (t) => {
    const metricsPort = await freePort();
    const r = run(t, [], { PORT: '0', HOST: '127.0.0.1', SWITCHBOARD_METRICS_PORT: String(metricsPort) });
    await banner(r);
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /^switchboard_connections\{app_id="app-id",protocol="pusher"\} 0$/m);
    assert.ok(r.stdout().includes(`Prometheus metrics on 127.0.0.1:${metricsPort}/metrics`), r.stdout());
    r.child.kill('SIGTERM');
    assert.equal((await r.exit).code, 0);
  });

  it('takes --port and --host flags and a --config file', async (t) => {
    const file = join(dir, 'apps.json');
    writeFileSync(file, JSON.stringify({ port: 1, apps: [{ id: 'file-app', key: 'file-key', secret: 'file-secret' }] }));
    const r = run(t, ['--config', file, '--port', '0', '--host', '127.0.0.1'], { PORT: '2' });
    const { port, line } = await banner(r);
    assert.match(line.msg as string, /file-app \(key file-key\)/);
    assert.equal((await fetch(`http://127.0.0.1:${port}/up/file-app`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/up/app-id`)).status, 404);
    r.child.kill('SIGTERM');
    assert.equal((await r.exit).code, 0);
  });

  it('on SIGTERM tells connected clients to reconnect (4200) and still exits 0', async (t) => {
    const r = run(t, [], { PORT: '0', HOST: '127.0.0.1' });
    const { port } = await banner(r);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/app-key?protocol=7&client=cli-test&version=1.0`);
    t.after(() => ws.terminate());
    const established = once(ws, 'message');
    const closed = once(ws, 'close');
    await established;
    r.child.kill('SIGTERM');
    const [code] = (await closed) as [number, Buffer];
    assert.equal(code, 4200);
    assert.equal((await r.exit).code, 0);
  });

  it('warns about SWITCHBOARD_ variables that set nothing and about the default secret on a public interface', async (t) => {
    const r = run(t, [], { PORT: '0', HOST: '0.0.0.0', SWITCHBOARD_METRIC_PORT: '9601' });
    await banner(r);
    const warnings = r
      .stdout()
      .split('\n')
      .filter((text) => text.trim())
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .filter((line) => line.level === 40);
    assert.deepEqual(warnings.map((w) => w.variables ?? w.apps), [['SWITCHBOARD_METRIC_PORT'], ['app-id']]);
    r.child.kill('SIGTERM');
    await r.exit;
  });

  it('exits at once with code 1 on a second SIGTERM while the drain waits for a client', async (t) => {
    const r = run(t, [], { PORT: '0', HOST: '127.0.0.1', SWITCHBOARD_SHUTDOWN_TIMEOUT_MS: '20000' });
    const { port } = await banner(r);
    // Upgraded, then deaf: it never answers the close frame, so the drain waits for it.
    const socket = connect({ host: '127.0.0.1', port });
    t.after(() => socket.destroy());
    socket.write(`GET /app/app-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    await once(socket, 'data');
    socket.pause();
    r.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(r.child.exitCode, null, 'the drain should still be waiting for the deaf client');
    const started = Date.now();
    r.child.kill('SIGTERM');
    assert.equal((await r.exit).code, 1);
    assert.ok(Date.now() - started < 2000, `exited ${Date.now() - started} ms after the second signal`);
  });

  it('keeps to its shutdown deadline when the cluster engine stops answering (Redis frozen)', async (t) => {
    const missing = redisBinariesMissing();
    if (missing) return t.skip(missing);
    const redisPort = await freePort();
    const redis = spawn(REDIS_SERVER, ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    t.after(() => {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
    });
    await eventually(
      () => new Promise<boolean>((resolve) => {
        const probe: Socket = connect({ host: '127.0.0.1', port: redisPort }, () => resolve(true)).on('error', () => resolve(false));
        probe.unref();
      }),
      'the throwaway redis-server to listen',
    );
    const r = run(t, [], {
      PORT: '0',
      HOST: '127.0.0.1',
      SWITCHBOARD_ADAPTER: 'redis',
      SWITCHBOARD_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      SWITCHBOARD_SHUTDOWN_TIMEOUT_MS: '1000',
    });
    await banner(r);
    redis.kill('SIGSTOP'); // alive but silent: every command waits for an answer
    const started = Date.now();
    r.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([r.exit, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 8000)))]);
    clearTimeout(timer);
    assert.ok(exit, 'still running 8 s after SIGTERM');
    // The drain's own bound (1 s, plus 1 s to say goodbye) ends it cleanly, before the forced exit at 4 s.
    assert.equal(exit.code, 0);
    assert.ok(Date.now() - started < 3500, `exited ${Date.now() - started} ms after SIGTERM`);
  });

  it('refuses a bad configuration with exit code 2, naming every problem on stderr', async (t) => {
    const file = join(dir, 'duplicate.json');
    writeFileSync(
      file,
      JSON.stringify({
        apps: [
          { id: 'one', key: 'same-key', secret: 's1' },
          { id: 'two', key: 'same-key', secret: 's2' },
        ],
      }),
    );
    const r = run(t, ['--config', file, '--colour', 'red'], { SWITCHBOARD_PORT: 'abc' });
    const { code } = await r.exit;
    assert.equal(code, 2);
    const err = r.stderr();
    assert.match(err, /invalid configuration/);
    assert.match(err, /port: .*number/);
    assert.match(err, /apps\.1\.key: duplicate app key "same-key"/);
    assert.match(err, /--colour: unknown option/);
    assert.equal(r.stdout(), '', 'nothing was started');
  });

  it('refuses an unreadable config file with exit code 2', async (t) => {
    const missing = join(dir, 'missing.json');
    const r = run(t, ['--config', missing], {});
    assert.equal((await r.exit).code, 2);
    assert.ok(r.stderr().includes(missing), r.stderr());
  });
});
