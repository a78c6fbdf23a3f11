// A Pusher-subset server on raw uWebSockets.js pub/sub: the engine-bound reference of
// issue #6. uWebSockets.js is not a dependency of this project (it is not published to the npm
// registry by its authors); point UWS_MODULE at an installed copy, e.g. the npm package
// @trufflesuite/uws-js-unofficial (which soketi can also be installed with):
//   UWS_MODULE=/path/to/node_modules/uWebSockets.js PORT=7002 node dist/bench/baselines/uws-server.js

import { createRequire } from 'node:module';
import { CONNECTION_ESTABLISHED, PONG, SUBSCRIPTION_SUCCEEDED, exitOnSignals, listenPort, newSocketId, parseClientMessage, parsePublications } from './pusher-subset.js';

/** The few uWebSockets.js calls used here (the module ships no types we can depend on). */
interface UwsSocket {
  send(message: string, isBinary?: boolean): number;
  subscribe(topic: string): boolean;
}
interface UwsResponse {
  onData(handler: (chunk: ArrayBuffer, isLast: boolean) => void): UwsResponse;
  onAborted(handler: () => void): UwsResponse;
  writeStatus(status: string): UwsResponse;
  writeHeader(key: string, value: string): UwsResponse;
  end(body?: string): UwsResponse;
}
interface UwsRequest {
  getUrl(): string;
}
interface UwsApp {
  ws(pattern: string, behavior: Record<string, unknown>): UwsApp;
  post(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  get(pattern: string, handler: (res: UwsResponse, req: UwsRequest) => void): UwsApp;
  publish(topic: string, message: string, isBinary?: boolean): boolean;
  listen(host: string, port: number, cb: (token: unknown) => void): UwsApp;
}
interface Uws {
  App(): UwsApp;
  DISABLED: number;
}

const modulePath = process.env.UWS_MODULE;
if (!modulePath) throw new Error('set UWS_MODULE to an installed uWebSockets.js directory');
const uws = createRequire(import.meta.url)(modulePath) as Uws;
const app = uws.App();
exitOnSignals();

app.ws('/*', {
  compression: uws.DISABLED,
  maxPayloadLength: 64 * 1024,
  idleTimeout: 0,
  open: (ws: UwsSocket) => ws.send(CONNECTION_ESTABLISHED(newSocketId())),
  message: (ws: UwsSocket, data: ArrayBuffer) => {
    const cmd = parseClientMessage(Buffer.from(data).toString());
    if (cmd.kind === 'ping') ws.send(PONG);
    if (cmd.kind !== 'subscribe') return;
    ws.subscribe(cmd.channel);
    ws.send(SUBSCRIPTION_SUCCEEDED(cmd.channel));
  },
});

app.post('/*', (res, req) => {
  const path = req.getUrl();
  const chunks: Buffer[] = [];
  let aborted = false;
  res.onAborted(() => (aborted = true));
  res.onData((chunk, isLast) => {
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast || aborted) return;
    const pubs = parsePublications(path, Buffer.concat(chunks).toString());
    if (!pubs) return void res.writeStatus('400 Bad Request').end('{}');
    for (const p of pubs) app.publish(p.channel, p.message, false);
    res.writeHeader('Content-Type', 'application/json').end('{}');
  });
});
app.get('/*', (res) => void res.end('OK'));

app.listen('127.0.0.1', listenPort(), (token) => {
  if (!token) throw new Error(`cannot listen on ${listenPort()}`);
  console.log(`uWebSockets.js baseline on ${listenPort()}`);
});
