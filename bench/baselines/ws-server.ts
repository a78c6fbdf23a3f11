// A Pusher-subset server on `ws` in three writing styles, the baselines of issue #6:
//   --mode send     ws.send() per recipient (frames and writes once per recipient)
//   --mode frame    frame built once, one socket.write per recipient
//   --mode batched  frame built once, each socket's frames of an event-loop turn in one write
// Run: PORT=7001 node dist/bench/baselines/ws-server.js --mode batched

import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { frameText } from '../../src/transport/frame.js';
import { CONNECTION_ESTABLISHED, PONG, SUBSCRIPTION_SUCCEEDED, exitOnSignals, listenPort, newSocketId, parseClientMessage, parsePublications } from './pusher-subset.js';

type Mode = 'send' | 'frame' | 'batched';
const mode = parseArgs({ options: { mode: { type: 'string', default: 'batched' } } }).values.mode as Mode;
if (!['send', 'frame', 'batched'].includes(mode)) throw new Error('--mode must be send, frame or batched');

interface Client {
  ws: WebSocket;
  socket: Duplex;
  pending: Buffer[];
}

const channels = new Map<string, Set<Client>>();
const flushList: Client[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  for (const c of flushList.splice(0)) {
    const frames = c.pending;
    c.pending = [];
    if (!c.socket.destroyed) c.socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }
}

function deliver(channel: string, message: string): void {
  const subs = channels.get(channel);
  if (!subs) return;
  if (mode === 'send') {
    for (const c of subs) c.ws.send(message);
    return;
  }
  const frame = frameText(message);
  for (const c of subs) {
    if (mode === 'frame') {
      c.socket.write(frame);
      continue;
    }
    if (c.pending.push(frame) === 1) flushList.push(c);
  }
  if (mode === 'batched' && !flushScheduled && flushList.length > 0) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

exitOnSignals();
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
const http = createServer((req, res) => {
  if (req.method !== 'POST') return void res.end('OK');
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const pubs = parsePublications(req.url?.split('?')[0] ?? '', Buffer.concat(chunks).toString());
    if (!pubs) {
      res.writeHead(400).end('{}');
      return;
    }
    for (const p of pubs) deliver(p.channel, p.message);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
  });
});
http.keepAliveTimeout = 60_000;

http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    const client: Client = { ws, socket, pending: [] };
    const joined = new Set<string>();
    ws.send(CONNECTION_ESTABLISHED(newSocketId()));
    ws.on('message', (data) => {
      const cmd = parseClientMessage(String(data));
      if (cmd.kind === 'ping') ws.send(PONG);
      if (cmd.kind !== 'subscribe' || joined.has(cmd.channel)) return;
      joined.add(cmd.channel);
      let subs = channels.get(cmd.channel);
      if (!subs) channels.set(cmd.channel, (subs = new Set()));
      subs.add(client);
      ws.send(SUBSCRIPTION_SUCCEEDED(cmd.channel));
    });
    ws.on('close', () => {
      for (const ch of joined) channels.get(ch)?.delete(client);
    });
    ws.on('error', () => {});
  });
});

http.listen(listenPort(), '127.0.0.1', () => console.log(`ws baseline (${mode}) on ${listenPort()}`));
