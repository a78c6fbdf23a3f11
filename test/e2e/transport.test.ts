import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { ClientLink, LinkHandler } from '../../src/transport/seam.js';
import { WireStatsTable } from '../../src/transport/wire-stats.js';
import { WsTransport, type WsTransportOptions } from '../../src/transport/ws/server.js';
import { Opcode, RawSocket, buildFrame } from '../helpers/raw-frames.js';
import { APP, startServer } from '../helpers/server.js';
import { until } from '../helpers/wait.js';

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

/** Transport settings for these tests: no limits, generous queues, long timeouts. */
function transportOptions(overrides: Partial<WsTransportOptions>): WsTransportOptions {
  return {
    maxMessageBytes: 1024,
    defaultQueuePolicy: { maxBytes: 1 << 20, maxMessages: 1000, onFull: 'close', waitMs: 1000 },
    clientAddress: (req) => req.socket.remoteAddress ?? '',
    activityTimeoutMs: 60_000,
    shortestPingAfterMs: 60_000,
    pongTimeoutMs: 30_000,
    maxConnectionsPerIp: 0,
    connectionAttemptsPerIpPerSecond: 0,
    consumeAttempt: () => Promise.resolve(true),
    onRefused: () => undefined,
    onError: () => undefined,
    onAdmissionError: () => undefined,
    wireStats: new WireStatsTable(10),
    ...overrides,
  };
}

/** A bare upgrade request on a socket that keeps its side open after the server's FIN. */
function rawUpgrade(port: number, path: string): Socket {
  const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  return socket;
}

describe('WebSocket transport', () => {
  let http: Server;
  let transport: WsTransport;
  const errors: unknown[] = [];
  let url = '';

  before(async () => {
    transport = new WsTransport(
      [
        { protocol: 'test', matches: (path) => path === '/t', open: (link) => new FaultyHandler(link) },
        {
          protocol: 'test',
          matches: (path) => path === '/broken',
          open: () => {
            throw new Error('open bug');
          },
        },
      ],
      transportOptions({ onError: (err) => errors.push(err) }),
    );
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

  it('closes only the connection whose front-end failed to open it, with 1011, and reports the error', async () => {
    const bystander = await open();
    const victim = new WebSocket(url.replace(/\/t$/, '/broken'));
    const [code] = (await once(victim, 'close')) as [number];
    assert.equal(code, 1011);
    assert.ok(errors.some((e) => (e as Error).message === 'open bug'));
    bystander.send('still here');
    const [reply] = (await once(bystander, 'message')) as [Buffer];
    assert.equal(String(reply), 'echo:still here');
    const next = await open(); // and new connections are taken
    next.close();
    bystander.close();
  });
});

describe('WebSocket transport: client address lookups', () => {
  /** A transport on its own listener that counts how often it asked for a client's address. */
  const start = async (maxConnectionsPerIp: number, admitSeen: string[]) => {
    let lookups = 0;
    const transport = new WsTransport(
      [
        { protocol: 'test', matches: (path) => path === '/plain', open: (link) => new FaultyHandler(link) },
        {
          protocol: 'test',
          matches: (path) => path === '/asks',
          admit: (_req, _url, clientAddress) => {
            admitSeen.push(clientAddress());
            return { ok: true };
          },
          open: (link) => new FaultyHandler(link),
        },
      ],
      transportOptions({
        clientAddress: (req) => {
          lookups++;
          return req.socket.remoteAddress ?? '';
        },
        maxConnectionsPerIp,
      }),
    );
    const http = createServer();
    http.on('upgrade', (req, socket, head) => transport.handleUpgrade(req, socket, head));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const base = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const connect = async (path: string): Promise<WebSocket> => {
      const ws = new WebSocket(base + path);
      await once(ws, 'open');
      return ws;
    };
    const stop = (): void => {
      transport.close();
      transport.terminateAll();
      http.close();
    };
    return { connect, lookups: () => lookups, stop };
  };

  it('does not look the address up when nothing needs it, and once when a route asks', async () => {
    const seen: string[] = [];
    const t = await start(0, seen);
    const plain = await t.connect('/plain');
    assert.equal(t.lookups(), 0);
    const asks = await t.connect('/asks');
    assert.equal(t.lookups(), 1);
    assert.deepEqual(seen, ['127.0.0.1']);
    plain.close();
    asks.close();
    t.stop();
  });

  it('looks it up once per connection under a per-IP connection limit, and the limit holds', async () => {
    const seen: string[] = [];
    const t = await start(1, seen);
    const first = await t.connect('/asks');
    assert.equal(t.lookups(), 1);
    assert.deepEqual(seen, ['127.0.0.1']);
    const refused = new WebSocket(first.url);
    refused.on('error', () => undefined); // the aborted request below may report one
    const [req, res] = (await once(refused, 'unexpected-response')) as [ClientRequest, IncomingMessage];
    assert.equal(res.statusCode, 429);
    req.destroy();
    first.close();
    await once(first, 'close');
    t.stop();
  });
});

describe('WebSocket transport: sockets it refuses or has not taken yet', { timeout: 20_000 }, () => {
  let http: Server;
  let transport: WsTransport;
  let port = 0;
  const errors: unknown[] = [];

  before(async () => {
    transport = new WsTransport(
      [
        { protocol: 'test', matches: (path) => path === '/t', open: (link) => new FaultyHandler(link) },
        {
          // Admission that takes a while, as an auth webhook or a shared rate counter does.
          protocol: 'test',
          matches: (path) => path === '/slow',
          admit: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), 300)),
          open: (link) => new FaultyHandler(link),
        },
      ],
      transportOptions({ onError: (err) => errors.push(err) }),
    );
    http = createServer();
    http.on('upgrade', (req, socket, head) => transport.handleUpgrade(req, socket, head));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    port = (http.address() as AddressInfo).port;
  });
  after(() => {
    transport.close();
    transport.terminateAll();
    http.close();
  });

  const upgrade = (path: string): Socket => rawUpgrade(port, path);

  const stillServes = async (): Promise<void> => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/t`);
    await once(ws, 'open');
    ws.send('ping');
    const [reply] = (await once(ws, 'message')) as [Buffer];
    assert.equal(String(reply), 'echo:ping');
    ws.close();
  };

  const connections = (): Promise<number> => new Promise((resolve, reject) => http.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it('a client that resets its connection after a refusal costs only that socket', async () => {
    const socket = upgrade('/nope');
    const [answer] = (await once(socket, 'data')) as [Buffer];
    assert.match(answer.toString('latin1'), /^HTTP\/1\.1 404 /);
    socket.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await stillServes(); // the process would have ended on an unhandled 'error' (ECONNRESET)
    assert.deepEqual(errors, []);
  });

  it('a client that resets its connection while its upgrade waits for admission costs only that socket', async () => {
    const socket = upgrade('/slow');
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.resetAndDestroy();
    await new Promise((resolve) => setTimeout(resolve, 400)); // past the admission verdict
    await stillServes();
    assert.deepEqual(errors, []);
  });

  it('closes a refused socket about a second after answering, even if the client keeps its side open', async () => {
    const held = Array.from({ length: 5 }, () => upgrade('/nope').resume());
    await Promise.all(held.map((s) => once(s, 'end'))); // each got its 404 and the server's FIN
    assert.equal(await connections(), 5);
    const until = Date.now() + 3000;
    while ((await connections()) > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await connections(), 0, 'refused sockets still held by the server');
    for (const s of held) s.destroy();
  });
});

describe('an API-only node', () => {
  it('refuses upgrades with 404, and a client that then resets costs only its socket', async () => {
    const server = await startServer({ role: 'api' });
    try {
      const socket = rawUpgrade(server.port, `/app/${APP.key}?protocol=7`);
      const [answer] = (await once(socket, 'data')) as [Buffer];
      assert.match(answer.toString('latin1'), /^HTTP\/1\.1 404 /);
      socket.resetAndDestroy();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const up = await fetch(`${server.url}/up`);
      assert.equal(up.status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('WebSocket transport: upgrades that wait for admission', () => {
  /** A transport whose only route takes `admitMs` to admit; `/slow` on its own listener. */
  const start = async (admitMs: number, overrides: Partial<WsTransportOptions>) => {
    const transport = new WsTransport(
      [
        {
          protocol: 'test',
          matches: (path) => path === '/slow',
          admit: () => new Promise((resolve) => setTimeout(() => resolve({ ok: true }), admitMs)),
          open: (link) => new FaultyHandler(link),
        },
      ],
      transportOptions(overrides),
    );
    const http = createServer();
    http.on('upgrade', (req, socket, head) => transport.handleUpgrade(req, socket, head));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const port = (http.address() as AddressInfo).port;
    /** The status line the upgrade gets: 101 or a refusal. */
    const attempt = async (): Promise<number> => {
      const socket = rawUpgrade(port, '/slow');
      const [answer] = (await once(socket, 'data')) as [Buffer];
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer.toString('latin1'))?.[1]);
      if (status !== 101) socket.destroy();
      else sockets.push(socket);
      return status;
    };
    const sockets: Socket[] = [];
    const stop = (): void => {
      for (const s of sockets) s.destroy();
      transport.close();
      transport.terminateAll();
      http.close();
    };
    return { transport, attempt, stop };
  };

  it('counts upgrades still being admitted against maxConnectionsPerIp: a burst gets only the allowed number through', async () => {
    const t = await start(300, { maxConnectionsPerIp: 2 });
    try {
      const statuses = await Promise.all(Array.from({ length: 6 }, () => t.attempt()));
      assert.deepEqual(statuses.sort(), [101, 101, 429, 429, 429, 429]);
    } finally {
      t.stop();
    }
  });

  it('refuses with 503 an upgrade whose admission ends after the shutdown began', async () => {
    const t = await start(300, {});
    try {
      const pending = t.attempt();
      await new Promise((resolve) => setTimeout(resolve, 100));
      t.transport.stopAccepting();
      assert.equal(await pending, 503);
    } finally {
      t.stop();
    }
  });
});

describe('WebSocket transport: a client that floods pings and reads no pongs', () => {
  it('is cut once more than 60 of its pongs wait to be written (ws terminates it: no close frame)', async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const s = await RawSocket.open(server.port, `/app/${APP.key}?protocol=7&client=raw&version=1.0`);
    t.after(() => s.destroy());
    await s.message((m) => m.event === 'pusher:connection_established');
    s.pause();
    const ping = buildFrame({ opcode: Opcode.Ping, payload: Buffer.alloc(125, 1) });
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    // At most 200 bursts (26 MB): far more than the loopback socket buffers hold, so pongs back up.
    for (let i = 0; i < 200 && !s.isEnded; i++) {
      s.write(burst);
      await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => s.isEnded, 'the server to cut the connection', 10_000);
  });
});
