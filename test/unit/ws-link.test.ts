import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import type { LinkHandler } from '../../src/transport/seam.js';
import { WsLink } from '../../src/transport/ws/link.js';

// A link's byte bound counts what the socket has not written yet. A real Writable whose writes
// complete only when the test says so plays the socket whose peer stopped reading: its
// writableLength is exactly the bytes handed over and not yet written.

const KB = 1024;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function stalledSocket(): { socket: Writable; release: () => void } {
  const pending: Array<() => void> = [];
  // A high-water mark above the bound, so 'drain' never runs and only the bound decides.
  const socket = new Writable({ highWaterMark: 1024 * KB, write: (_chunk, _enc, done) => void pending.push(() => done()) });
  return { socket, release: () => pending.splice(0).forEach((done) => done()) };
}

function link(socket: Writable): { link: WsLink; dropped: () => number } {
  let dropped = 0;
  const ws = { readyState: WebSocket.OPEN } as unknown as WebSocket;
  const l = new WsLink(ws, socket as unknown as ConstructorParameters<typeof WsLink>[1], { maxBytes: 100 * KB, maxMessages: 1000, onFull: 'drop', waitMs: 0 });
  const handler: LinkHandler = {
    onMessage() {},
    onIdle() {},
    onPongTimeout() {},
    onOverflow() {},
    onDropped: () => void dropped++,
    onClose() {},
  };
  l.handler = handler;
  return { link: l, dropped: () => dropped };
}

test('bytes the socket has not written count toward maxBytes, and are re-read before a frame is refused', async () => {
  const { socket, release } = stalledSocket();
  const { link: l, dropped } = link(socket);

  assert.equal(l.write(Buffer.alloc(60 * KB)), true);
  await nextTurn(); // flushed: 60 KB now wait in the socket
  assert.equal(socket.writableLength, 60 * KB);

  // 60 KB in the socket + 50 KB would pass the 100 KB bound.
  assert.equal(l.write(Buffer.alloc(50 * KB)), false);
  assert.equal(dropped(), 1);

  // The peer reads again: the socket's backlog is gone although the link has not written since.
  release();
  assert.equal(socket.writableLength, 0);
  assert.equal(l.write(Buffer.alloc(50 * KB)), true);
  assert.equal(dropped(), 1);
  await nextTurn();
  assert.equal(socket.writableLength, 50 * KB);
});
