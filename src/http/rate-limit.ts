import type { IncomingMessage } from 'node:http';
import { CounterName, type Counters } from '../core/counters.js';
import type { RateLimiter } from '../core/window-rate-limiter.js';
import { HttpError } from './errors.js';

export interface ApiRateContext {
  readonly rateLimiter: RateLimiter;
  readonly counters: Counters;
  /** Per client IP over all apps; 0 = no limit. */
  readonly apiRequestsPerIpPerSecond: number;
  /** The client's address (the TCP peer, or what trusted proxies report). */
  readonly clientAddress: (req: IncomingMessage) => string;
}

/**
 * The per-IP budget over all apps. Each API checks it itself, so a refusal comes in that API's
 * error shape. Counted under no app: the app is not known yet. Like `enforceRate`, undefined
 * when there is no limit to wait for.
 */
export function enforceIpRate(ctx: ApiRateContext, req: IncomingMessage): Promise<void> | undefined {
  if (ctx.apiRequestsPerIpPerSecond <= 0) return undefined;
  return enforceRate(ctx, `api-ip:${ctx.clientAddress(req)}`, ctx.apiRequestsPerIpPerSecond, '', CounterName.ApiRequestsRateLimited);
}

/**
 * Refuses with 429 and Retry-After when `key` is over `perSecond` in this second. Without a
 * limit it returns undefined rather than a settled promise: most servers run without one, and
 * the REST path then takes no detour through the microtask queue.
 */
export function enforceRate(ctx: ApiRateContext, key: string, perSecond: number, appId: string, counter: CounterName): Promise<void> | undefined {
  if (perSecond <= 0) return undefined;
  return ctx.rateLimiter.consume(key, perSecond).then((allowed) => {
    if (allowed) return;
    ctx.counters.increment(appId, counter);
    throw new HttpError(429, `Rate limit reached: at most ${perSecond} requests per second`, { 'Retry-After': '1' });
  });
}
