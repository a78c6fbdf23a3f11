import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { ClientLink, LinkHandler } from '../../src/transport/link.js';
import { WsTransport } from '../../src/transport/ws-server.js';

/** A front-end whose message handler throws on "boom" and echoes anything else. */
class FaultyHandler implements LinkHandler {
  constructor(private readonly link: ClientLink) {}
  onMessage(data: Buffer): void {
    if (String(data) === 'boom') throw new Error('front-end bug');
    this.link.sendText(`echo:${String(data)}`);
  }
  onIdle(): void {}
  onPongTimeout(): void {}
  onOverflow(): void {}
  onDropped(): void {}
  onClose(): void {}
}

describe('WebSocket transport', () => {
  let http: Server;
  let transport: WsTransport;
  const errors: unknown[] = [];
  let url = '';

  before(async () => {
    transport = new WsTransport([{ matches: (path) => path === '/t', open: (link) => new FaultyHandler(link) }], {
      maxMessageBytes: 1024,
      defaultQueuePolicy: { maxBytes: 1 << 20, maxMessages: 1000, onFull: 'close', waitMs: 1000 },
      clientAddress: (req) => req.socket.remoteAddress ?? '',
      activityTimeoutMs: 60_000,
      pongTimeoutMs: 30_000,
      maxConnectionsPerIp: 0,
      connectionAttemptsPerIpPerSecond: 0,
      consumeAttempt: () => Promise.resolve(true),
      onRefused: () => undefined,
      onError: (err) => errors.push(err),
    });
    http = createServer();
    http.on('upgrade', (req, socket, head) => transport.handleUpgrade(req, socket, head));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/t`;
    transport.start();
  });
  after(async () => {
    transport.close();
    transport.terminateAll();
    http.close();
  });

  const open = async (): Promise<WebSocket> => {
    const ws = new WebSocket(url);
    await once(ws, 'open');
    return ws;
  };

  it('closes only the connection whose handler threw, with 1011, and reports the error', async () => {
    const victim = await open();
    const bystander = await open();
    victim.send('boom');
    const [code] = (await once(victim, 'close')) as [number];
    assert.equal(code, 1011);
    assert.equal((errors[0] as Error).message, 'front-end bug');
    bystander.send('still here');
    const [reply] = (await once(bystander, 'message')) as [Buffer];
    assert.equal(String(reply), 'echo:still here');
    bystander.close();
  });
});
