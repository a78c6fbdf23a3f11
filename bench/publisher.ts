// Publishes events over the server's HTTP API with keep-alive connections and
// several requests in flight, so REST round trips do not cap the event rate.

import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import type { Target } from './loopback.js';
import { PUSHER_EVENT_NAME, nowUs, type ProtocolName } from './protocol.js';
import { signedPath, type AppCredentials } from './pusher-sign.js';
import { Histogram } from './stats.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** Pusher's documented limit for batch_events. */
export const MAX_BATCH = 10;

export interface PublishEvent {
  channel: string;
  data: string;
}

export interface PublisherConfig {
  target: Target;
  protocol: ProtocolName;
  creds: AppCredentials;
  /** Bearer token for the native POST /broadcast API; empty = sign it like a Pusher request. */
  token: string;
  concurrency: number;
}

export interface PublisherStats {
  requests: number;
  events: number;
  failedRequests: number;
  statusCounts: Record<string, number>;
  firstError: string | undefined;
  socketsOpened: number;
  /** HTTP round trip per request, µs. */
  rtt: Histogram;
  /** Fixed-rate mode: ticks where all request slots were busy and the schedule slipped. */
  lateTicks: number;
  /** Fixed-rate mode: how late each request left against its due time, µs (timer lateness). */
  scheduleLag: Histogram;
}

export class Publisher {
  private readonly agent: Agent;
  private readonly seenSockets = new WeakSet<Socket>();
  private inFlight = 0;
  readonly stats: PublisherStats = {
    requests: 0,
    events: 0,
    failedRequests: 0,
    statusCounts: {},
    firstError: undefined,
    socketsOpened: 0,
    rtt: new Histogram(),
    lateTicks: 0,
    scheduleLag: new Histogram(),
  };

  constructor(private readonly cfg: PublisherConfig) {
    this.agent = new Agent({ keepAlive: true, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency });
  }

  /** One event → single publish; several → one batch request (Pusher batch_events). */
  send(events: PublishEvent[]): Promise<boolean> {
    let path: string;
    let body: string;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.cfg.protocol === 'native') {
      if (events.length !== 1) throw new Error('the native protocol has no batch publish');
      body = JSON.stringify({ channel: events[0]!.channel, data: events[0]!.data });
      if (this.cfg.token) {
        path = '/broadcast';
        headers.authorization = `Bearer ${this.cfg.token}`;
      } else {
        // Switchboard's native API also takes a Pusher signature, so no token is needed.
        path = signedPath(this.cfg.creds, 'POST', '/broadcast', body);
      }
    } else if (events.length === 1) {
      const e = events[0]!;
      body = JSON.stringify({ name: PUSHER_EVENT_NAME, channels: [e.channel], data: e.data });
      path = signedPath(this.cfg.creds, 'POST', `/apps/${this.cfg.creds.appId}/events`, body);
    } else {
      body = JSON.stringify({
        batch: events.map((e) => ({ name: PUSHER_EVENT_NAME, channel: e.channel, data: e.data })),
      });
      path = signedPath(this.cfg.creds, 'POST', `/apps/${this.cfg.creds.appId}/batch_events`, body);
    }
    headers['content-length'] = String(Buffer.byteLength(body));
    const started = nowUs();
    this.inFlight++;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean, status: string, err?: string): void => {
        this.inFlight--;
        this.stats.requests++;
        this.stats.statusCounts[status] = (this.stats.statusCounts[status] ?? 0) + 1;
        if (ok) {
          this.stats.events += events.length;
          this.stats.rtt.record(nowUs() - started);
        } else {
          this.stats.failedRequests++;
          this.stats.firstError ??= err;
        }
        resolve(ok);
      };
      const req = request(
        {
          host: this.cfg.target.host,
          port: this.cfg.target.port,
          method: 'POST',
          path,
          headers,
          agent: this.agent,
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          let errBody = '';
          res.on('data', (c: Buffer) => {
            if (!ok && errBody.length < 300) errBody += c.toString();
          });
          res.on('end', () => done(ok, String(status), ok ? undefined : `HTTP ${status} ${errBody.slice(0, 300)}`));
          res.on('error', (e) => done(false, 'error', e.message));
        },
      );
      req.on('socket', (s: Socket) => {
        if (!this.seenSockets.has(s)) {
          this.seenSockets.add(s);
          this.stats.socketsOpened++;
        }
      });
      req.on('timeout', () => req.destroy(new Error('request timeout')));
      req.on('error', (e) => done(false, 'error', e.message));
      req.end(body);
    });
  }

  /** As fast as the server answers, with `concurrency` requests in flight. */
  async runMaxRate(opts: { durationMs: number; maxEvents: number; next: () => PublishEvent[] }): Promise<void> {
    const deadline = Date.now() + opts.durationMs;
    let issued = 0;
    const lane = async (): Promise<void> => {
      while (Date.now() < deadline && issued < opts.maxEvents) {
        const batch = opts.next();
        issued += batch.length;
        await this.send(batch);
      }
    };
    await Promise.all(Array.from({ length: this.cfg.concurrency }, lane));
  }

  /**
   * `rate` events per second, scheduled against the clock so slow responses do not lower the
   * rate silently: event k (0-based) is due at t0 + k/rate, and a timer that wakes late sends
   * what is due at once (the lag is recorded in stats.scheduleLag) without shifting later events.
   */
  async runFixedRate(opts: { rate: number; durationMs: number; maxEvents: number; next: () => PublishEvent[] }): Promise<void> {
    const periodMs = 1000 / opts.rate;
    const t0 = performance.now();
    let sent = 0;
    const pending = new Set<Promise<boolean>>();
    while (sent < opts.maxEvents) {
      const elapsed = performance.now() - t0;
      if (elapsed >= opts.durationMs) break;
      const due = Math.min(opts.maxEvents, Math.floor(elapsed / periodMs) + 1);
      let slotsFull = false;
      while (sent < due) {
        if (this.inFlight >= this.cfg.concurrency) {
          this.stats.lateTicks++;
          slotsFull = true;
          break;
        }
        this.stats.scheduleLag.record((performance.now() - (t0 + sent * periodMs)) * 1000);
        const batch = opts.next();
        sent += batch.length;
        const p = this.send(batch);
        pending.add(p);
        void p.then(() => pending.delete(p));
      }
      if (slotsFull) {
        // Behind schedule with every slot busy: wait for an answer, not a 1 ms poll (which
        // would burn the load generator's core exactly when the server is slow).
        await Promise.race(pending);
        continue;
      }
      // Wake when the next event is due (timers fire up to ~1 ms late; that is lag, not drift).
      const wait = t0 + sent * periodMs - performance.now();
      await sleep(Math.min(50, Math.max(1, wait)));
    }
    await Promise.all(pending);
  }

  close(): void {
    this.agent.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
