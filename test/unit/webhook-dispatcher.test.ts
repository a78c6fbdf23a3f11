import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { Counters } from '../../src/core/counters.js';
import { pino } from 'pino';
import { createLogger } from '../../src/log.js';
import { RefusalLog } from '../../src/refusal-log.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';

/** A webhook target on loopback that hands every request to `handle`. */
async function target(t: TestContext, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close().closeAllConnections());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

function dispatcherFor(url: string, counters: Counters, timeoutMs: number, refusals = new RefusalLog(createLogger('silent'), 1000)): WebhookDispatcher {
  const app = validateConfig({ apps: [{ id: 'a', key: 'k', secret: 's', webhooks: [{ url }] }] }).apps[0];
  return new WebhookDispatcher([app], { batchMs: 5, leaveDelayMs: 0, timeoutMs, retryForMs: 0, maxQueue: 100 }, counters, refusals, () => true);
}

describe('WebhookDispatcher: targets that misbehave', () => {
  it('logs a refused target without its query string, which may carry a token', async (t) => {
    const url = await target(t, (_req, res) => res.writeHead(500).end());
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const refusals = new RefusalLog(log, 60_000);
    const dispatcher = dispatcherFor(`${url}?token=HOOK-SECRET`, new Counters(), 1000, refusals);
    dispatcher.handle('a', { name: 'channel_occupied', channel: 'room' });
    await dispatcher.close(1000);
    refusals.flush();
    const refused = lines.map((l) => JSON.parse(l) as { msg: string; url: string; status: number }).find((l) => l.msg.startsWith('webhook deliveries failed'));
    assert.equal(refused?.url, url);
    assert.equal(refused?.status, 500);
    assert.ok(!lines.join('').includes('HOOK-SECRET'));
  });

  it('aborts a request still unanswered when close() reaches its deadline, and counts its events dropped', async (t) => {
    let received!: () => void;
    const arrived = new Promise<void>((resolve) => (received = resolve));
    let aborted!: () => void;
    const gone = new Promise<void>((resolve) => (aborted = resolve));
    const url = await target(t, (req) => {
      req.socket.once('close', aborted); // never answered
      received();
    });
    const counters = new Counters();
    const dispatcher = dispatcherFor(url, counters, 60_000);
    dispatcher.handle('a', { name: 'channel_occupied', channel: 'room' });
    await arrived;
    const started = Date.now();
    await dispatcher.close(200);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([gone.then(() => 'aborted'), new Promise((resolve) => (timer = setTimeout(resolve, 3000, 'still open')))]);
    clearTimeout(timer);
    assert.equal(outcome, 'aborted', 'the request outlived close() by 3 s');
    const took = Date.now() - started;
    assert.ok(took < 1500, `the request lived ${took} ms past close()`);
    assert.equal(counters.snapshot('a').webhook_events_dropped, 1);
  });

  it('does not follow a redirect with the signed body', async (t) => {
    let elsewhere = 0;
    const other = await target(t, (_req, res) => {
      elsewhere += 1;
      res.end();
    });
    let redirected!: () => void;
    const answered = new Promise<void>((resolve) => (redirected = resolve));
    const url = await target(t, (_req, res) => {
      res.writeHead(307, { Location: other }).end();
      redirected();
    });
    const counters = new Counters();
    const dispatcher = dispatcherFor(url, counters, 2_000);
    dispatcher.handle('a', { name: 'channel_occupied', channel: 'room' });
    await answered;
    await dispatcher.close(1_000);
    assert.equal(elsewhere, 0);
    assert.equal(counters.snapshot('a').webhook_failures, 1);
  });
});
