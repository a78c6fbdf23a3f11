import { once } from 'node:events';
import type { NatsConnection } from '@nats-io/transport-node';
import { Cluster, type Redis } from 'ioredis';
import type { Config } from '../config/schema.js';
import type { MessageBus } from '../core/bus.js';
import { MemoryClaimStore, type ClaimStore } from '../core/claims.js';
import type { HistoryLimits, HistoryStore } from '../core/history.js';
import { MemoryIdempotencyStore, type IdempotencyStore } from '../core/idempotency.js';
import { MemoryHistoryStore } from '../core/memory-history.js';
import { MemoryRateLimiter, type RateLimiter } from '../core/window-rate-limiter.js';
import type { Logger } from '../log.js';
import type { RefusalLog } from '../refusal-log.js';
import { boundedNats } from './bounded-nats.js';
import { BoundedRedis } from './bounded-redis.js';
import { ClusterBus } from './bus.js';
import { EngineStartError } from './health.js';
import { LocalBus } from './local.js';
import { NatsClaimStore } from './nats-claims.js';
import { LazyNatsHistoryStore, NatsHistoryStore } from './nats-history.js';
import { LazyNatsIdempotencyStore, NatsIdempotencyStore } from './nats-idempotency.js';
import { NatsEngine } from './nats.js';
import { RedisClaimStore } from './redis-claims.js';
import { RedisHistoryStore } from './redis-history.js';
import { RedisIdempotencyStore } from './redis-idempotency.js';
import { RedisRateLimiter } from './redis-rate-limit.js';
import { RedisClusterEngine, RedisEngine } from './redis.js';
import type { ClusterStats } from './stats.js';

/** What the engines report to: counts for the metrics, and a throttled log of refusals. */
export interface ClusterReporting {
  readonly stats: ClusterStats;
  readonly refusals: RefusalLog;
}

/**
 * How long a claim or rate-limit command may wait for Redis. A Redis that is connected but not
 * answering (stopped, swapping) would otherwise hold every /claim, ?claim= upgrade and rate-limited
 * request for as long as it lasts; past this they fail (500) and the caller can retry.
 */
const STORE_COMMAND_TIMEOUT_MS = 2_000;

export interface ClusterParts {
  readonly bus: MessageBus;
  /** Claims must be single-use cluster-wide, so they live in the engine's own store. */
  readonly claims: ClaimStore;
  /** Counters of rate limits: shared through Redis on the Redis engines, per node otherwise. */
  readonly rateLimiter: RateLimiter;
  /** Channel history: one position per message cluster-wide, so it lives in the engine too. */
  readonly history: HistoryStore;
  /** Idempotency keys of publishes: a retry through any node must be recognised, so in the engine too. */
  readonly idempotency: IdempotencyStore;
}

/** Picks the engine from `config.adapter`; the rest of the server never knows which it got. */
export async function createCluster(config: Config, log: Logger, reporting?: ClusterReporting): Promise<ClusterParts> {
  const prefix = `${config.clusterPrefix}:`;
  const busOptions = {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    nodeTimeoutMs: config.nodeTimeoutMs,
    requestTimeoutMs: config.clusterRequestTimeoutMs,
    dataTopics: 16,
    engineTimeoutMs: config.engineTimeoutMs,
    startTimeoutMs: config.startTimeoutMs,
    ...(config.clusterRouting === 'interest'
      ? { routing: { shards: config.clusterShards, graceMs: config.clusterInterestGraceMs, joinTimeoutMs: config.clusterRequestTimeoutMs } }
      : {}),
    ...reporting,
  };
  const clusterLog = log.child({ component: 'cluster' });
  const windowMs = config.idempotencyWindowSeconds * 1000;
  switch (config.adapter) {
    case 'local':
      return { bus: new LocalBus(), claims: new MemoryClaimStore(), rateLimiter: new MemoryRateLimiter(), history: new MemoryHistoryStore(), idempotency: new MemoryIdempotencyStore(windowMs) };
    case 'redis': {
      // Bounded while Redis is down (no offline queue) or frozen (at most MAX_PENDING_COMMANDS unanswered).
      const store = new BoundedRedis(config.redisUrl, { maxRetriesPerRequest: 1, commandTimeout: STORE_COMMAND_TIMEOUT_MS });
      store.on('error', (err: Error) => clusterLog.debug({ err: err.message }, 'redis store error'));
      // Without an offline queue a command sent before the connection is up fails: wait for it.
      await readyWithin(store, config.startTimeoutMs);
      return {
        bus: new ClusterBus(new RedisEngine(config.redisUrl, prefix, clusterLog), busOptions, clusterLog),
        claims: new RedisClaimStore(store, prefix),
        rateLimiter: new RedisRateLimiter(store, prefix),
        history: new RedisHistoryStore(store, prefix),
        idempotency: new RedisIdempotencyStore(store, prefix, windowMs),
      };
    }
    case 'redis-cluster': {
      const nodes = redisClusterNodes(config);
      const store = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: 1, commandTimeout: STORE_COMMAND_TIMEOUT_MS } });
      store.on('error', (err: Error) => clusterLog.debug({ err: err.message }, 'redis cluster store error'));
      return {
        bus: new ClusterBus(new RedisClusterEngine(nodes, prefix, clusterLog), busOptions, clusterLog),
        claims: new RedisClaimStore(store, prefix),
        rateLimiter: new RedisRateLimiter(store, prefix),
        history: new RedisHistoryStore(store, prefix),
        idempotency: new RedisIdempotencyStore(store, prefix, windowMs),
      };
    }
    case 'nats': {
      const transport = new NatsEngine(config.natsUrl, `${config.clusterPrefix}.`, clusterLog);
      const bus = new ClusterBus(transport, busOptions, clusterLog);
      // The stores share the bus's connection, through one bound (see bounded-nats.ts).
      let bounded: { raw: NatsConnection; store: NatsConnection } | undefined;
      const storeConnection = (): NatsConnection | undefined => {
        const raw = transport.connection;
        if (!raw) return undefined;
        if (bounded?.raw !== raw) bounded = { raw, store: boundedNats(raw) };
        return bounded.store;
      };
      const claims = new LazyClaimStore(() => {
        const nc = storeConnection();
        if (!nc) return Promise.reject(new Error('NATS is not connected'));
        return NatsClaimStore.open(nc, `${config.clusterPrefix}-claims`);
      });
      const history = new LazyNatsHistoryStore(() => {
        const nc = storeConnection();
        if (!nc) return Promise.reject(new Error('NATS is not connected'));
        return NatsHistoryStore.open(nc, `${config.clusterPrefix}-history`, largestHistory(config));
      });
      const idempotency = new LazyNatsIdempotencyStore(() => {
        const nc = storeConnection();
        if (!nc) return Promise.reject(new Error('NATS is not connected'));
        return NatsIdempotencyStore.open(nc, `${config.clusterPrefix}-idempotency`, windowMs);
      });
      return { bus, claims, rateLimiter: new MemoryRateLimiter(), history, idempotency };
    }
  }
}

/** Resolves once the client is connected; an EngineStartError past `ms` (the CLI exits 2). */
async function readyWithin(client: Redis, ms: number): Promise<void> {
  if (client.status === 'ready') return;
  const deadline = AbortSignal.timeout(ms);
  try {
    await once(client, 'ready', { signal: deadline });
  } catch {
    client.disconnect();
    throw new EngineStartError(`Redis (the store client) did not answer within ${ms} ms (startTimeoutMs)`);
  }
}

/** `redisClusterNodes` ("host:port" each) as ioredis takes them. */
export function redisClusterNodes(config: Pick<Config, 'redisClusterNodes'>): { host: string; port: number }[] {
  return config.redisClusterNodes.map((hostPort) => {
    const [host, port] = hostPort.split(':') as [string, string];
    return { host, port: Number(port) };
  });
}

/** The stream-wide caps of the JetStream history: the largest any app's rule asks for. */
function largestHistory(config: Config): HistoryLimits {
  const rules = config.apps.flatMap((app) => app.history);
  return { size: Math.max(1, ...rules.map((r) => r.size)), ttlSeconds: Math.max(1, ...rules.map((r) => r.ttlSeconds)) };
}

/** Opens a store on first use: the NATS one needs the connection that the bus makes at start. */
class LazyClaimStore implements ClaimStore {
  private store: Promise<ClaimStore> | undefined;

  constructor(private readonly open: () => Promise<ClaimStore>) {}

  private get(): Promise<ClaimStore> {
    // A failed open (JetStream not reachable yet) is retried on the next use, not remembered.
    return (this.store ??= this.open().catch((err: unknown) => {
      this.store = undefined;
      throw err;
    }));
  }

  async create(...args: Parameters<ClaimStore['create']>) {
    return (await this.get()).create(...args);
  }
  async take(...args: Parameters<ClaimStore['take']>) {
    return (await this.get()).take(...args);
  }
  async list(...args: Parameters<ClaimStore['list']>) {
    return (await this.get()).list(...args);
  }
  async remove(...args: Parameters<ClaimStore['remove']>) {
    return (await this.get()).remove(...args);
  }
  async close(): Promise<void> {
    if (this.store) await (await this.store).close();
  }
}
