import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One event of a Pusher webhook body (all its fields are strings). */
export type WebhookEvent = { readonly name: string; readonly channel: string; readonly [field: string]: string };
export type WebhookBody = { readonly time_ms: number; readonly events: readonly WebhookEvent[] };

export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  /** As node:http gives them: lower-case names, the shape `sdk.webhook({headers})` wants. */
  readonly headers: IncomingHttpHeaders;
  readonly rawBody: string;
  /** Parsed rawBody; undefined when it was not JSON. */
  readonly body: WebhookBody | undefined;
  readonly receivedAt: number;
  /** The status this receiver answered (or will answer, for a held request); 0 when `respond` answered. */
  readonly status: number;
}

export interface ReceiverOptions {
  /** Answer this many requests with 500 before answering 200 (Infinity: never succeed). */
  failTimes?: number;
  /** Keep requests unanswered until `release()`: a stuck backend. */
  hold?: boolean;
  /** Path of the URL the server is given. */
  path?: string;
  /** Listen on this port (a receiver that comes back where it was); a free one otherwise. */
  port?: number;
  /**
   * Answer each request with this (after its body was read) instead of the status rules above:
   * a backend endpoint such as the native auth webhook.
   */
  respond?: (req: IncomingMessage, res: ServerResponse) => void;
}

/**
 * An HTTP endpoint on a free loopback port that records every request as it arrived: the event
 * webhook receiver (answering by `failTimes` / `hold`) or, with `respond`, any backend endpoint
 * the server calls. Waits are driven by arrivals (no polling); close it with `await receiver.close()`.
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  /** Settable at any time: 500s still to answer before answering 200. */
  failTimes: number;
  private holding: boolean;
  private readonly held: ServerResponse[] = [];
  private waiters: Array<() => void> = [];
  private readonly server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: WebhookBody | undefined;
      try {
        body = JSON.parse(rawBody) as WebhookBody;
      } catch {
        body = undefined;
      }
      const record = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawBody, body, receivedAt: Date.now() };
      if (this.respond) {
        this.requests.push({ ...record, status: 0 });
        this.respond(req, res);
      } else {
        const fail = this.failTimes > 0;
        if (fail) this.failTimes -= 1;
        const status = fail ? 500 : 200;
        this.requests.push({ ...record, status });
        if (this.holding && !fail) this.held.push(res);
        else res.writeHead(status).end();
      }
      for (const wake of this.waiters.splice(0)) wake();
    });
  });

  private readonly respond: ReceiverOptions['respond'];

  private constructor(
    options: ReceiverOptions,
    private readonly path: string,
  ) {
    this.failTimes = options.failTimes ?? 0;
    this.holding = options.hold ?? false;
    this.respond = options.respond;
  }

  static async start(options: ReceiverOptions = {}): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver(options, options.path ?? '/webhooks');
    await new Promise<void>((resolve) => receiver.server.listen(options.port ?? 0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.path}`;
  }

  /** Events of the requests answered 2xx, in arrival order. */
  delivered(): WebhookEvent[] {
    return this.requests.filter((r) => r.status < 300).flatMap((r) => r.body?.events ?? []);
  }

  /** Delivered events of one channel. */
  eventsOf(channel: string): WebhookEvent[] {
    return this.delivered().filter((e) => e.channel === channel);
  }

  /** Waits until `cond()` holds, re-checking on each request that arrives. */
  async until(cond: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`webhook receiver: timed out waiting for ${what}; got ${JSON.stringify(this.requests.map((r) => r.body))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The first delivered event matching `pred`, waiting for it if needed. */
  async waitFor(pred: (e: WebhookEvent) => boolean, timeoutMs = 3000): Promise<WebhookEvent> {
    let found: WebhookEvent | undefined;
    await this.until(() => (found = this.delivered().find(pred)) !== undefined, 'a matching event', timeoutMs);
    return found as WebhookEvent;
  }

  /** Waits until `count` requests (whatever they were answered) have arrived. */
  waitForRequests(count: number, timeoutMs = 3000): Promise<void> {
    return this.until(() => this.requests.length >= count, `${count} requests`, timeoutMs);
  }

  /** Answers the held requests 200 and stops holding. */
  release(): void {
    this.holding = false;
    for (const res of this.held.splice(0)) res.writeHead(200).end();
  }

  async close(): Promise<void> {
    this.release();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function startReceiver(options: ReceiverOptions = {}): Promise<WebhookReceiver> {
  return WebhookReceiver.start(options);
}
