import { createServer, type Server } from 'node:http';
import { listen } from '../util/listen.js';

/** A host name or address as a Host header carries it, without the port; anything else is refused. */
const HOST = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::\d+)?$/;

/**
 * A plain-HTTP listener that sends every request to the same host and path over HTTPS, with 308
 * so that an API POST is repeated as a POST (301 would let clients turn it into a GET).
 */
export async function startHttpsRedirect(host: string, port: number, httpsPort: number): Promise<{ server: Server; port: number }> {
  const portPart = httpsPort === 443 ? '' : `:${httpsPort}`;
  const server = createServer((req, res) => {
    const m = HOST.exec(req.headers.host ?? '');
    if (!m) {
      res.writeHead(400, { 'Content-Type': 'text/plain', Connection: 'close' }).end('A Host header is needed to redirect to HTTPS\n');
      return;
    }
    const location = `https://${m[1]}${portPart}${req.url?.startsWith('/') ? req.url : '/'}`;
    res.writeHead(308, { Location: location, 'Content-Type': 'text/plain', 'Content-Length': 0, Connection: 'close' }).end();
  });
  // A WebSocket client on ws:// cannot follow a redirect: it is refused the same way, with the address to use.
  server.on('upgrade', (req, socket) => {
    const m = HOST.exec(req.headers.host ?? '');
    const location = m ? `Location: wss://${m[1]}${portPart}${req.url ?? '/'}\r\n` : '';
    socket.end(`HTTP/1.1 ${m ? 308 : 400} ${m ? 'Permanent Redirect' : 'Bad Request'}\r\n${location}Connection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  return { server, port: await listen(server, port, host) };
}
