import type { Cluster, Redis } from 'ioredis';
import { pageOf, type HistoryEntry, type HistoryLimits, type HistoryMessage, type HistoryPage, type HistoryStore, type Position } from '../core/history.js';
import { newEpoch } from '../core/memory-history.js';

/**
 * Gives the next offset and appends in one atomic step: the counter (with the epoch) lives in a
 * hash, the messages in a stream whose ids are the offsets, capped by count; both expire together
 * when the channel falls silent; a missing hash (expired, or Redis lost it) or a last append older
 * than the age limit starts a new epoch.
 */
const APPEND = `
local m = redis.call('HMGET', KEYS[1], 'e', 'l')
local e = m[1]
if (not e) or tonumber(m[2]) <= tonumber(ARGV[5]) - tonumber(ARGV[3]) then
  e = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', e, 'o', 0)
end
redis.call('HSET', KEYS[1], 'l', ARGV[5])
local o = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '=', ARGV[2], o .. '-0', 't', ARGV[5], 'd', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {e, o}
`;

/**
 * Begins an empty history (a new epoch at offset 0) for a channel that has none, or whose messages
 * all aged out, as APPEND would; a read runs it so that the epoch an empty channel's subscriber is
 * told is the one its first message gets. Answers the epoch and offset.
 */
const BEGIN = `
local m = redis.call('HMGET', KEYS[1], 'e', 'l')
if (not m[1]) or tonumber(m[2]) <= tonumber(ARGV[3]) - tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', ARGV[1], 'o', 0, 'l', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('HMGET', KEYS[1], 'e', 'o')
`;

type StreamEntry = [id: string, fields: string[]];

/**
 * History in Redis or Redis Cluster: a channel's two keys share a hash tag, so the script runs
 * on one shard, and every node gets its offsets from the same counter.
 */
export class RedisHistoryStore implements HistoryStore {
  /** A channel's appends go out on one connection (one shard on a cluster) and run in order. */
  readonly ordersAppends = true;

  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
    private readonly now: () => number = Date.now,
  ) {
    redis.defineCommand('switchboardHistoryAppend', { numberOfKeys: 2, lua: APPEND });
    redis.defineCommand('switchboardHistoryBegin', { numberOfKeys: 2, lua: BEGIN });
  }

  private keys(appId: string, channel: string): [string, string] {
    const tag = `${this.prefix}h:{${appId}:${channel}}`;
    return [`${tag}:m`, `${tag}:s`];
  }

  /** Runs one of the scripts defined in the constructor (ioredis adds them as untyped methods). */
  private script(name: 'switchboardHistoryAppend' | 'switchboardHistoryBegin', ...args: (string | number)[]): Promise<[string, number | string]> {
    const run = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<[string, number | string]>>)[name];
    return run.call(this.redis, ...args);
  }

  async append(appId: string, channel: string, entry: HistoryEntry, limits: HistoryLimits): Promise<Position> {
    const [meta, stream] = this.keys(appId, channel);
    const [epoch, offset] = await this.script('switchboardHistoryAppend', meta, stream, newEpoch(), limits.size, limits.ttlSeconds * 1000, JSON.stringify(entry), this.now());
    return { epoch, offset: Number(offset) };
  }

  async read(appId: string, channel: string, after: number | undefined, limit: number, limits: HistoryLimits, newest = false): Promise<HistoryPage> {
    const [meta, stream] = this.keys(appId, channel);
    const results = await this.redis.multi().hmget(meta, 'e', 'o', 'l').xrevrange(stream, '+', '-', 'COUNT', limits.size).exec();
    if (!results) throw new Error('history read was aborted');
    for (const [err] of results) if (err) throw err;
    const [epoch, top, last] = results[0][1] as [string | null, string | null, string | null];
    const cutoff = this.now() - limits.ttlSeconds * 1000;
    if (epoch === null || Number(last) <= cutoff) {
      const [begun, offset] = await this.script('switchboardHistoryBegin', meta, stream, newEpoch(), limits.ttlSeconds * 1000, this.now());
      return pageOf(begun, Number(offset), [], after, limit, newest);
    }
    const kept: HistoryMessage[] = [];
    for (const [id, fields] of (results[1][1] as StreamEntry[]).reverse()) {
      const at = Number(fields[1]);
      if (at <= cutoff) continue;
      kept.push({ ...(JSON.parse(fields[3]) as HistoryEntry), offset: Number(id.split('-')[0]), at });
    }
    return pageOf(epoch, Number(top), kept, after, limit, newest);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => undefined);
    // quit fails at once while Redis is unreachable (no offline queue); without this the client would keep reconnecting and hold the process open.
    this.redis.disconnect();
  }
}
