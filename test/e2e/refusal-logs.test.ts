import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { createServer } from '../../src/index.js';
import { serverSdk } from '../helpers/clients.js';
import { freePort } from '../helpers/cluster.js';
import { refusal } from '../helpers/native.js';

const LIMITED = { id: 'limited-id', key: 'limited-key', secret: 'limited-secret', apiRequestsPerSecond: 1 };
const DOWN = { id: 'down-id', key: 'down-key', secret: 'down-secret' };

describe('refusals in the server log', () => {
  it('a burst of rate-limited API calls and of connections refused by a failing auth webhook give one line each, with their count', async (t) => {
    const lines: Array<{ msg: string; app?: string; count?: number }> = [];
    const log = pino({ level: 'info' }, { write: (text: string) => void lines.push(JSON.parse(text) as { msg: string }) });
    const server = await createServer(
      {
        host: '127.0.0.1',
        port: 0,
        refusalLogIntervalMs: 60_000, // the period ends at close(), which flushes what it gathered
        apps: [LIMITED, { ...DOWN, authWebhookUrl: `http://127.0.0.1:${await freePort()}/auth` }],
      },
      { log },
    );
    let closed = false;
    t.after(() => (closed ? undefined : server.close()));

    const sdk = serverSdk(server, LIMITED);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => sdk.trigger('room', 'e', { i }).then(() => 200, (err: { status?: number }) => err.status ?? 0)),
    );
    const limited = answers.filter((s) => s === 429).length;
    assert.ok(limited >= 9, `most calls are refused: ${answers.join(',')}`);
    for (let i = 0; i < 5; i++) assert.equal((await refusal(server, `/ws/${DOWN.key}`)).status, 503);
    const refusalLines = (): typeof lines => lines.filter((l) => l.count !== undefined);
    assert.deepEqual(refusalLines(), [], 'nothing is logged per refusal');

    await server.close();
    closed = true;
    const rate = refusalLines().filter((l) => l.msg.includes('rate limit'));
    assert.deepEqual(rate.map((l) => [l.app, l.count]), [[LIMITED.id, limited]]);
    const auth = refusalLines().filter((l) => l.msg.includes('auth webhook'));
    assert.deepEqual(auth.map((l) => [l.app, l.count]), [[DOWN.id, 5]]);
  });
});
