import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Pusher from 'pusher';
import { WebSocket } from 'ws';
import { APP } from '../helpers/server.js';

/**
 * Graceful shutdown of the real process: the CLI under live traffic gets SIGTERM (or SIGINT).
 * Every client is told to reconnect (Pusher: pusher:error + close 4200; native: close 1001),
 * spread over SWITCHBOARD_SHUTDOWN_SPREAD_MS, after every message that was published (and
 * acknowledged) before the signal; /up and new upgrades are refused while draining; exit 0.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BANNER = /^Switchboard listening on (\S+):(\d+) /;
const SPREAD_MS = 1000;
const TIMEOUT_MS = 4000;
const TOKEN = 'shutdown-token-0123456789';

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  readonly stderr: () => string;
}

async function startCli(t: TestContext): Promise<Running> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHBOARD_') && k !== 'PORT' && k !== 'HOST') env[k] = v;
  Object.assign(env, {
    PORT: '0',
    HOST: '127.0.0.1',
    SWITCHBOARD_LOG_LEVEL: 'info',
    SWITCHBOARD_SHUTDOWN_SPREAD_MS: String(SPREAD_MS),
    SWITCHBOARD_SHUTDOWN_TIMEOUT_MS: String(TIMEOUT_MS),
    SWITCHBOARD_APP_API_TOKEN: TOKEN,
  });
  const child = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, at: Date.now() }));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner in 15 s; stdout: ${out}; stderr: ${err}`)), 15_000);
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      for (const text of out.split('\n')) {
        if (!text.trim()) continue;
        let line: { msg?: unknown };
        try {
          line = JSON.parse(text) as { msg?: unknown };
        } catch {
          continue; // a partial line
        }
        const m = typeof line.msg === 'string' ? BANNER.exec(line.msg) : null;
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[2]));
        }
      }
    });
    void exit.then(() => reject(new Error(`exited before the banner; stderr: ${err}`)));
  });
  return { child, port, exit, stderr: () => err };
}

/** A client that records the numbered messages it got, then how (and when) it was closed. */
class Recorder {
  readonly numbers: number[] = [];
  readonly errors: unknown[] = [];
  /** Numbers received after a pusher:error (must stay empty: the error comes last). */
  afterError = 0;
  closeCode: number | undefined;
  closeReason = '';
  closedAt = 0;
  readonly closed: Promise<void>;
  readonly ready: Promise<void>;

  constructor(
    readonly ws: WebSocket,
    pusher: boolean,
  ) {
    this.ready = new Promise((resolve, reject) => {
      ws.once('error', reject);
      ws.on('message', (raw) => {
        const m = JSON.parse(String(raw)) as { event?: string; type?: string; data?: unknown };
        if (pusher) {
          if (m.event === 'pusher_internal:subscription_succeeded') resolve();
          else if (m.event === 'pusher:error') this.errors.push(m.data);
          else if (m.event === 'n') this.record(JSON.parse(m.data as string) as { n: number });
        } else if (m.type === 'subscribed') resolve();
        else if (typeof (m as { n?: unknown }).n === 'number') this.record(m as { n: number });
      });
      if (pusher) ws.once('open', () => ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'live' } })));
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.closeCode = code;
        this.closeReason = String(reason);
        this.closedAt = Date.now();
        resolve();
      });
    });
  }

  private record(m: { n: number }): void {
    if (this.errors.length > 0) this.afterError += 1;
    this.numbers.push(m.n);
  }

  static pusher(port: number): Recorder {
    return new Recorder(new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7&client=raw&version=1.0`), true);
  }

  static native(port: number): Recorder {
    return new Recorder(new WebSocket(`ws://127.0.0.1:${port}/ws?channel=live&ack=1`), false);
  }
}

/** Publishes {n} on "live" over REST, one request after another, until stopped or refused. */
function publisher(port: number): { acked: Array<{ n: number; at: number }>; stop: () => Promise<void> } {
  const sdk = new Pusher({ appId: APP.id, key: APP.key, secret: APP.secret, host: '127.0.0.1', port: String(port), useTLS: false });
  const acked: Array<{ n: number; at: number }> = [];
  let running = true;
  const loop = (async () => {
    for (let n = 0; running; n++) {
      try {
        await sdk.trigger('live', 'n', { n });
        acked.push({ n, at: Date.now() });
      } catch {
        return; // the server has stopped taking requests
      }
    }
  })();
  return {
    acked,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/** A WebSocket upgrade during the drain: the HTTP status it was refused with, or the network error. */
function upgradeOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${APP.key}?protocol=7`);
    ws.once('open', () => {
      resolve('open');
      ws.terminate();
    });
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    ws.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

async function drainUnderTraffic(t: TestContext, signal: 'SIGTERM' | 'SIGINT', pusherCount: number, nativeCount: number): Promise<void> {
  const server = await startCli(t);
  const pushers = Array.from({ length: pusherCount }, () => Recorder.pusher(server.port));
  const natives = Array.from({ length: nativeCount }, () => Recorder.native(server.port));
  const all = [...pushers, ...natives];
  t.after(() => {
    for (const c of all) c.ws.terminate();
  });
  await Promise.all(all.map((c) => c.ready));

  const pub = publisher(server.port);
  while (pub.acked.length < 30) await new Promise((resolve) => setTimeout(resolve, 5));
  const signalledAt = Date.now();
  server.child.kill(signal);
  const ackedBefore = pub.acked.filter((a) => a.at < signalledAt).map((a) => a.n);

  // While draining: /up says 503 and new upgrades are refused.
  let up: Response | undefined;
  for (;;) {
    up = await fetch(`http://127.0.0.1:${server.port}/up`);
    if (up.status !== 200) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.equal(up.status, 503);
  assert.deepEqual(await up.json(), { ok: false });
  // The connection is about to be cut, so the client is told not to reuse it.
  assert.equal(up.headers.get('connection'), 'close');
  assert.equal(await upgradeOutcome(server.port), '503 {"error":"Server shutting down"}');

  const exit = await server.exit;
  await pub.stop();
  assert.deepEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, server.stderr());
  const took = exit.at - signalledAt;
  assert.ok(took < TIMEOUT_MS + 1000, `exited ${took} ms after the signal`);
  await Promise.all(all.map((c) => c.closed));

  for (const [i, c] of pushers.entries()) {
    assert.equal(c.closeCode, 4200, `pusher client ${i}`);
    assert.equal(c.closeReason, 'Server is restarting, reconnect');
    assert.deepEqual(c.errors, [{ code: 4200, message: 'Server is restarting, reconnect' }], `pusher client ${i}`);
    assert.equal(c.afterError, 0, 'nothing after pusher:error');
  }
  for (const [i, c] of natives.entries()) {
    assert.equal(c.closeCode, 1001, `native client ${i}`);
    assert.equal(c.closeReason, 'Server is restarting, reconnect');
  }
  // Everything acknowledged before the signal reached every client, in order, before its close.
  const last = Math.max(...ackedBefore);
  for (const [i, c] of all.entries()) {
    const got = new Set(c.numbers);
    const missing = ackedBefore.filter((n) => !got.has(n));
    assert.deepEqual(missing, [], `client ${i} lost messages published before the signal`);
    assert.deepEqual(c.numbers.slice(0, last + 1), ackedBefore, `client ${i}: in order`);
  }
  // Told to reconnect spread over the window, not all at once.
  const times = all.map((c) => c.closedAt).sort((a, b) => a - b);
  const first = times[0];
  const lastClose = times[times.length - 1];
  t.diagnostic(`${signal}: ${ackedBefore.length} messages before it; closes from +${first - signalledAt} to +${lastClose - signalledAt} ms; exit after ${took} ms`);
  assert.ok(lastClose - first >= SPREAD_MS / 2, `closes spread over ${lastClose - first} ms`);
  assert.ok(lastClose - signalledAt < SPREAD_MS + 1000, `last close ${lastClose - signalledAt} ms after the signal`);
}

describe('graceful shutdown of the CLI process', { concurrency: true }, () => {
  it('SIGTERM under traffic: 4200 / 1001 spread over the window, nothing acknowledged is lost, /up 503, upgrades refused, exit 0', async (t) => {
    await drainUnderTraffic(t, 'SIGTERM', 60, 20);
  });

  it('SIGINT drains the same way', async (t) => {
    await drainUnderTraffic(t, 'SIGINT', 20, 10);
  });
});
