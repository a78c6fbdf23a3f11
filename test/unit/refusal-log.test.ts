import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { CounterName, Counters } from '../../src/core/counters.js';
import { RefusalLog } from '../../src/refusal-log.js';

interface Line {
  msg: string;
  app: string;
  count: number;
  level: number;
  detail?: string;
}

/** A RefusalLog whose lines land in `lines`; `next()` resolves when the next line is out. */
function capture(periodMs: number): { refusals: RefusalLog; lines: Line[]; next: () => Promise<void> } {
  const lines: Line[] = [];
  let wake: (() => void) | undefined;
  const log = pino({ level: 'info' }, {
    write(text: string) {
      lines.push(JSON.parse(text) as Line);
      wake?.();
    },
  });
  // The log's timer does not hold the process open (unref): the wait does, until the line is out.
  const next = (): Promise<void> =>
    new Promise((resolve) => {
      const keepAlive = setInterval(() => undefined, 1_000);
      wake = () => {
        clearInterval(keepAlive);
        resolve();
      };
    });
  return { refusals: new RefusalLog(log, periodMs), lines, next };
}

describe('RefusalLog', () => {
  it('turns N refusals within a period into one line with count N, per app', async () => {
    const { refusals, lines, next } = capture(50);
    const arrived = next();
    for (let i = 0; i < 1000; i++) refusals.note('a', 'rate limit reached');
    for (let i = 0; i < 3; i++) refusals.note('b', 'rate limit reached');
    assert.equal(lines.length, 0, 'nothing is logged per refusal');
    await arrived;
    assert.deepEqual(
      lines.map((l) => [l.msg, l.app, l.count]),
      [
        ['rate limit reached', 'a', 1000],
        ['rate limit reached', 'b', 3],
      ],
    );
    assert.ok(lines.every((l) => l.level === 40), 'warn');
  });

  it('starts a new count in the next period', async () => {
    const { refusals, lines, next } = capture(30);
    let arrived = next();
    refusals.note('a', 'slow');
    refusals.note('a', 'slow');
    await arrived;
    arrived = next();
    refusals.note('a', 'slow');
    await arrived;
    assert.deepEqual(
      lines.map((l) => l.count),
      [2, 1],
    );
  });

  it('logs the counters that are refusals, with the latest detail, and not the routine ones', () => {
    const { refusals, lines } = capture(60_000);
    const counters = new Counters(refusals.noteCounter);
    counters.increment('a', CounterName.AuthWebhookFailures, 1, 'The auth webhook did not answer in time');
    counters.increment('a', CounterName.AuthWebhookFailures, 1, 'The auth webhook failed (it answered 502)');
    counters.increment('a', CounterName.MessagesDropped, 5);
    counters.increment('a', CounterName.WebhooksSent);
    refusals.flush();
    assert.equal(lines.length, 1);
    assert.equal(lines[0]?.count, 2);
    assert.equal(lines[0]?.detail, 'The auth webhook failed (it answered 502)');
    assert.equal(counters.snapshot('a').messages_dropped, 5, 'counting is unaffected');
  });
});
