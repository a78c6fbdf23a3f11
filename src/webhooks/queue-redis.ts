import { randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import {
  decodeDeadLetter,
  decodeEntry,
  encodeDeadLetter,
  encodeEntry,
  type DeadLetter,
  type LaneRef,
  type Lease,
  type PushResult,
  type QueueEntry,
  type QueueLimits,
  type WebhookQueue,
} from './queue.js';

// Every key of one app carries the same hash tag, so on Redis Cluster the scripts below (which
// touch a lane, its lease, the app's size and dead letters together) run on one shard.

/** KEYS: lane list, size hash. ARGV: entry, maxEntries, maxBytes. */
const PUSH = `
local n = tonumber(redis.call('HGET', KEYS[2], 'n') or '0')
local b = tonumber(redis.call('HGET', KEYS[2], 'b') or '0')
if n + 1 > tonumber(ARGV[2]) or b + #ARGV[1] > tonumber(ARGV[3]) then return 0 end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('HINCRBY', KEYS[2], 'b', #ARGV[1])
return 1`;

/** KEYS: lane list, lease. ARGV: holder, leaseMs, max. The head under a fresh lease, or nothing (empty, or leased). */
const TAKE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[3]) - 1)
if #items == 0 then return {} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return items`;

/** KEYS: lease. ARGV: holder, leaseMs. */
const EXTEND = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS: lease. ARGV: holder. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/**
 * KEYS: lane list, lease, size hash, dead list. ARGV: holder, count, bytes, maxDead, dead letters...
 * Removes the taken head (only while the lease is still ours: otherwise another node has the
 * entries now and removes them itself) and, when dead letters are given, keeps them.
 */
const FINISH = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], tonumber(ARGV[2]), -1)
redis.call('HINCRBY', KEYS[3], 'n', -tonumber(ARGV[2]))
redis.call('HINCRBY', KEYS[3], 'b', -tonumber(ARGV[3]))
redis.call('DEL', KEYS[2])
for i = 5, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
local over = redis.call('LLEN', KEYS[4]) - tonumber(ARGV[4])
if over > 0 then redis.call('LTRIM', KEYS[4], over, -1) end
return 1`;

/** KEYS: dead list, lane list, size hash. ARGV: dead letter, entry, maxEntries, maxBytes. */
const REVIVE = `
local n = tonumber(redis.call('HGET', KEYS[3], 'n') or '0')
local b = tonumber(redis.call('HGET', KEYS[3], 'b') or '0')
if n + 1 > tonumber(ARGV[3]) or b + #ARGV[2] > tonumber(ARGV[4]) then return 0 end
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HINCRBY', KEYS[3], 'n', 1)
redis.call('HINCRBY', KEYS[3], 'b', #ARGV[2])
return 1`;

/**
 * The queue in Redis or Redis Cluster: a list per lane, a lease key per lane (SET PX, so a dead
 * holder's lease runs out by itself), a size hash per app for the bound, and a capped dead-letter
 * list per app. Redis keeps it across an engine restart only with persistence (AOF) on.
 */
export class RedisWebhookQueue implements WebhookQueue {
  readonly name = 'redis';
  /** take() calls waiting for a push made here. */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix: string,
    private readonly limits: QueueLimits,
  ) {}

  private appKey(appId: string): string {
    // base64url has no braces, so the tag is the whole app id whatever it holds.
    return `${this.prefix}wh:{${Buffer.from(appId).toString('base64url')}}`;
  }

  private keys(ref: LaneRef): { list: string; lease: string; size: string; dead: string } {
    const app = this.appKey(ref.appId);
    const list = `${app}:${ref.target}:${ref.lane}`;
    return { list, lease: `${list}:lease`, size: `${app}:size`, dead: `${app}:dead` };
  }

  get isHealthy(): boolean {
    return this.client.status === 'ready';
  }

  async push(ref: LaneRef, entry: QueueEntry): Promise<PushResult> {
    const k = this.keys(ref);
    const ok = await this.client.eval(PUSH, 2, k.list, k.size, encodeEntry(entry), this.limits.maxEntries, this.limits.maxBytes);
    if (ok !== 1) return 'full';
    for (const wake of this.waiters.get(k.list) ?? []) wake();
    return 'queued';
  }

  async take(ref: LaneRef, max: number, waitMs: number): Promise<Lease | undefined> {
    const k = this.keys(ref);
    let lease = await this.tryTake(ref, max);
    if (lease || waitMs <= 0) return lease;
    // Pushes made on this node wake the wait at once; those of other nodes are seen on the next call.
    await new Promise<void>((resolve) => {
      let waiting = this.waiters.get(k.list);
      if (!waiting) this.waiters.set(k.list, (waiting = new Set()));
      const set = waiting;
      const wake = (): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(k.list);
        resolve();
      };
      const timer = setTimeout(wake, waitMs);
      set.add(wake);
    });
    lease = await this.tryTake(ref, max);
    return lease;
  }

  private async tryTake(ref: LaneRef, max: number): Promise<Lease | undefined> {
    const k = this.keys(ref);
    // One token per lease: a second take, even from this node, waits for the first to end.
    const holder = randomUUID();
    const items = (await this.client.eval(TAKE, 2, k.list, k.lease, holder, this.limits.leaseMs, max)) as string[];
    if (items.length === 0) return undefined;
    const entries = items.map(decodeEntry);
    const bytes = items.reduce((sum, item) => sum + Buffer.byteLength(item), 0);
    const finish = async (dead: readonly string[]): Promise<void> => {
      await this.client.eval(FINISH, 4, k.list, k.lease, k.size, k.dead, holder, entries.length, bytes, this.limits.maxDeadLetters, ...dead);
    };
    return {
      entries,
      extend: async () => (await this.client.eval(EXTEND, 1, k.lease, holder, this.limits.leaseMs)) === 1,
      ack: () => finish([]),
      release: async () => {
        await this.client.eval(RELEASE, 1, k.lease, holder);
      },
      bury: (failedAt, reason) => finish(entries.map((e) => encodeDeadLetter({ ...e, target: ref.target, lane: ref.lane, failedAt, reason }))),
    };
  }

  async deadLetters(appId: string, limit: number): Promise<DeadLetter[]> {
    if (limit <= 0) return [];
    const items = await this.client.lrange(`${this.appKey(appId)}:dead`, 0, limit - 1);
    return items.map(decodeDeadLetter);
  }

  async replay(appId: string, ids: readonly string[] | undefined): Promise<number> {
    const app = this.appKey(appId);
    const wanted = ids ? new Set(ids) : undefined;
    const items = await this.client.lrange(`${app}:dead`, 0, -1);
    let moved = 0;
    for (const item of items) {
      const dead = decodeDeadLetter(item);
      if (wanted && !wanted.has(dead.id)) continue;
      const k = this.keys({ appId, target: dead.target, lane: dead.lane });
      const entry = encodeEntry(dead);
      const ok = await this.client.eval(REVIVE, 3, k.dead, k.list, k.size, item, entry, this.limits.maxEntries, this.limits.maxBytes);
      if (ok === 1) moved += 1;
    }
    return moved;
  }

  async close(): Promise<void> {
    for (const set of this.waiters.values()) for (const wake of set) wake();
    await this.client.quit().catch(() => undefined);
    this.client.disconnect();
  }
}
