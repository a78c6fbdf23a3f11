import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DebugTap, type ConsoleCommand, type DebugEntry } from '../../src/core/debug-tap.js';
import { eventually } from '../helpers/wait.js';

/** Taps of a few nodes whose commands reach every one of them, as the cluster bus's requests do. */
function cluster(...nodes: string[]): { taps: DebugTap[]; sent: ConsoleCommand[] } {
  const sent: ConsoleCommand[] = [];
  const taps: DebugTap[] = nodes.map(
    (node) =>
      new DebugTap(node, (command) => {
        sent.push(command);
        for (const tap of taps) tap.receive(structuredClone(command));
        return Promise.resolve();
      }),
  );
  return { taps, sent };
}

describe('the debug tap across nodes', () => {
  test('nobody watching: no node is watched, and an emit sends nothing', () => {
    const { taps, sent } = cluster('a', 'b');
    for (const tap of taps) assert.equal(tap.watched, false);
    taps[1]?.emit('app', { type: 'api_message', channel: 'c', event: 'e' });
    assert.deepEqual(sent, []);
    for (const tap of taps) tap.close();
  });

  test("a console on node A gets node B's lines of its app only; once it closes, B is unwatched again", async () => {
    const { taps, sent } = cluster('a', 'b');
    const [a, b] = taps as [DebugTap, DebugTap];
    const seen: DebugEntry[] = [];
    const watch = a.listen('app', (entry) => seen.push(entry));
    await watch.ready;
    assert.equal(b.watched, true, 'B heard of the watch');
    b.emit('other-app', { type: 'api_message', channel: 'c', event: 'not-this' });
    b.emit('app', { type: 'api_message', channel: 'c', event: 'this' });
    await eventually(() => seen.length > 0, "B's line on A");
    assert.deepEqual(
      seen.map((e) => [e.node, e.event]),
      [['b', 'this']],
    );
    watch.stop();
    assert.equal(a.watched, false);
    assert.equal(b.watched, false, 'the last console closing tells the other nodes');
    const entries = sent.filter((c) => c.kind === 'console-entries');
    assert.equal(entries.length, 1, 'one batch; nothing of the unwatched app');
    a.close();
    b.close();
  });

  test('a watch that is not renewed runs out', async () => {
    const [tap] = cluster('b').taps as [DebugTap];
    tap.receive({ kind: 'console-watch', node: 'a', appIds: ['app'], ttlMs: 50 });
    assert.equal(tap.watched, true);
    await eventually(() => !tap.watched, 'the watch expired', 2_000);
    tap.close();
  });

  test('lines for other nodes are bounded per batch: the rest are dropped and counted', async () => {
    const { taps, sent } = cluster('a', 'b');
    const [a, b] = taps as [DebugTap, DebugTap];
    let seen = 0;
    await a.listen('app', () => (seen += 1)).ready;
    for (let i = 0; i < 600; i++) b.emit('app', { type: 'api_message', channel: 'c', event: `e${i}` });
    await eventually(() => seen > 0, 'the batch');
    const batch = sent.find((c) => c.kind === 'console-entries');
    assert.equal(batch?.kind === 'console-entries' && batch.entries.length, 500);
    assert.equal(batch?.kind === 'console-entries' && batch.dropped, 100);
    assert.equal(seen, 500);
    a.close();
    b.close();
  });
});
