import type { App, WebhookTarget } from '../core/app.js';
import { CounterName, type Counters } from '../core/counters.js';
import type { RefusalLog } from '../refusal-log.js';
import { hmacSha256Hex } from '../util/hmac.js';
import type { QueueEntry } from './queue.js';

/**
 * The ids of a request's events, in body order, comma-separated: the same for every retry,
 * redelivery and replay, so a receiver drops a duplicate by it.
 */
export const EVENT_ID_HEADER = 'X-Switchboard-Event-Id';

export const FIRST_RETRY_MS = 1_000;
export const MAX_RETRY_MS = 60_000;

/** Hears each request's outcome (the dashboard's debug console); `detail` holds no secret or URL. */
export type WebhookReport = (appId: string, sent: boolean, detail: string) => void;

export type Attempt = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/** The request body: Pusher's `{time_ms, events}`, stamped with when the (first) event happened. */
export function webhookBody(entries: readonly QueueEntry[]): string {
  return JSON.stringify({ time_ms: (entries[0]).at, events: entries.map((e) => e.event) });
}

/** Failed deliveries are logged throttled, per target (the URL without its query string). */
const WEBHOOK_FAILED = 'webhook deliveries failed (refused or unreachable)';

/** One POST of a signed body to one target; counts and logs how it went. */
export class WebhookSender {
  /** The target without its query string, which may carry a token. */
  readonly loggedUrl: string;

  constructor(
    private readonly app: App,
    private readonly target: WebhookTarget,
    private readonly timeoutMs: number,
    private readonly counters: Counters,
    private readonly refusals: RefusalLog,
    private readonly report?: WebhookReport,
  ) {
    const url = new URL(target.url);
    this.loggedUrl = url.origin + url.pathname;
  }

  async attempt(entries: readonly QueueEntry[], stop: AbortSignal): Promise<Attempt> {
    const body = webhookBody(entries);
    let reason: string;
    try {
      const response = await fetch(this.target.url, {
        method: 'POST',
        headers: {
          ...this.target.headers,
          'Content-Type': 'application/json',
          'X-Pusher-Key': this.app.key,
          'X-Pusher-Signature': hmacSha256Hex(this.app.secret, body),
          [EVENT_ID_HEADER]: entries.map((e) => e.id).join(','),
        },
        body,
        signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), stop]),
        // A redirect would re-send the signed body to wherever the target points: not followed.
        redirect: 'manual',
      });
      await response.body?.cancel();
      if (response.ok) {
        this.counters.increment(this.app.id, CounterName.WebhooksSent);
        this.report?.(this.app.id, true, `${entries.length} event(s), HTTP ${response.status}`);
        return { ok: true };
      }
      reason = `status ${response.status}`;
      this.refusals.note(this.app.id, WEBHOOK_FAILED, { url: this.loggedUrl, status: response.status }, 1, this.loggedUrl);
    } catch (err) {
      reason = (err as Error).message;
      this.refusals.note(this.app.id, WEBHOOK_FAILED, { url: this.loggedUrl, err: reason }, 1, this.loggedUrl);
    }
    this.counters.increment(this.app.id, CounterName.WebhookFailures);
    this.report?.(this.app.id, false, reason);
    return { ok: false, reason };
  }
}

/** Waits `ms`, or less when one of `wakers` is called (a shutdown cutting a backoff short). */
export function backoff(ms: number, wakers: Set<() => void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const wake = (): void => {
      clearTimeout(timer);
      wakers.delete(wake);
      resolve();
    };
    const timer = setTimeout(wake, ms).unref();
    wakers.add(wake);
  });
}
