import type { IncomingMessage, ServerResponse } from 'node:http';

/** How often an idle stream gets a comment line, so proxies keep it open. */
const KEEPALIVE_MS = 15_000;

/**
 * A Server-Sent Events stream with a bounded queue: while the socket will not take more, up to
 * `maxQueued` events wait; beyond that they are dropped, counted, and the count is sent (as a
 * `dropped` event) once the socket drains.
 */
export class SseStream {
  private readonly queue: string[] = [];
  private blocked = false;
  private dropped = 0;
  private closed = false;
  private readonly keepalive: NodeJS.Timeout;

  constructor(
    req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly maxQueued: number,
    onClose: () => void,
  ) {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', 'X-Accel-Buffering': 'no' });
    res.write(': open\n\n');
    res.on('drain', () => this.flush());
    this.keepalive = setInterval(() => this.write(': keepalive\n\n'), KEEPALIVE_MS);
    this.keepalive.unref();
    req.on('close', () => {
      this.closed = true;
      clearInterval(this.keepalive);
      onClose();
    });
  }

  send(event: string, data: unknown): void {
    if (this.closed) return;
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    if (!this.blocked) return this.write(text);
    if (this.queue.length >= this.maxQueued) this.dropped += 1;
    else this.queue.push(text);
  }

  private write(text: string): void {
    if (!this.res.write(text)) this.blocked = true;
  }

  private flush(): void {
    this.blocked = false;
    if (this.dropped > 0) {
      this.write(`event: dropped\ndata: ${this.dropped}\n\n`);
      this.dropped = 0;
    }
    while (!this.blocked && this.queue.length > 0) this.write(this.queue.shift() as string);
  }
}
