// Command-line options shared by all scenarios.

import { parseArgs } from 'node:util';
import { isLoopbackHost } from './loopback.js';
import type { ProtocolName } from './protocol.js';

export interface Options {
  url: string | undefined;
  server: 'switchboard' | undefined;
  serverCmd: string | undefined;
  serverPid: number | undefined;
  readyPath: string;
  startupTimeoutMs: number;
  appId: string;
  appKey: string;
  appSecret: string;
  token: string;
  protocol: ProtocolName;
  nativePath: string;
  nativeSettleMs: number;
  pin: boolean;
  /** undefined = the scenario's default */
  subs: number | undefined;
  channels: number | undefined;
  durationS: number;
  maxMessages: number;
  payloadBytes: number;
  rate: number | undefined;
  concurrency: number;
  batch: boolean;
  /** channels with --protocol native: POST /send to each client's user instead of /broadcast to its channel. */
  send: boolean;
  workers: number | undefined;
  connectConcurrency: number;
  connectTimeoutMs: number;
  sourceAddrs: number | undefined;
  drainMs: number;
  settleMs: number;
  watchers: number;
  maxJoins: number;
  /** storm: connections opened and closed before the measured wave. */
  warmupConnections: number;
  /** fanout/latency/channels: seconds of publishing before the measured window. */
  warmupS: number;
  timeoutS: number;
  /** cross-node: how many Switchboard nodes to start, and on which engine. */
  nodes: number;
  adapter: ClusterAdapter;
  redisUrl: string;
  natsUrl: string;
  redisClusterNodes: string | undefined;
  /** scale: the cluster routings to measure, each over 1, 2, 4 … --nodes nodes. */
  routings: Array<'broadcast' | 'interest'>;
  /** scale: channels subscribed and unsubscribed on node 1 to measure what remote churn costs. */
  churn: number;
  /** history: the engines measured, each with history off and on. */
  historyEngines: HistoryEngine[];
  /** Node flags for spawned Switchboard processes / for client workers (profiling). */
  serverNodeArgs: string[];
  workerNodeArgs: string[];
  /** Where the spawned server finds its app: the config (default) or a database table the tool fills. */
  appStore: 'config' | 'postgres' | 'mysql';
  appStoreUrl: string | undefined;
  help: boolean;
}

export type ClusterAdapter = 'redis' | 'nats' | 'redis-cluster';

export const HISTORY_ENGINES = ['local', 'redis', 'nats'] as const;
export type HistoryEngine = (typeof HISTORY_ENGINES)[number];

const spec = {
  url: { type: 'string' },
  server: { type: 'string' },
  'server-cmd': { type: 'string' },
  'server-pid': { type: 'string' },
  'ready-path': { type: 'string', default: '/up' },
  'startup-timeout-ms': { type: 'string', default: '15000' },
  'app-id': { type: 'string', default: 'app-id' },
  'app-key': { type: 'string', default: 'app-key' },
  'app-secret': { type: 'string', default: 'app-secret' },
  'app-store': { type: 'string', default: 'config' },
  'app-store-url': { type: 'string' },
  token: { type: 'string', default: '' },
  protocol: { type: 'string', default: 'pusher' },
  'native-path': { type: 'string', default: '/ws' },
  'native-settle-ms': { type: 'string', default: '500' },
  pin: { type: 'boolean', default: false },
  subs: { type: 'string' },
  channels: { type: 'string' },
  duration: { type: 'string', default: '10' },
  'max-messages': { type: 'string', default: '1000000' },
  'payload-bytes': { type: 'string', default: '100' },
  rate: { type: 'string' },
  concurrency: { type: 'string', default: '8' },
  batch: { type: 'boolean', default: false },
  send: { type: 'boolean', default: false },
  workers: { type: 'string' },
  'connect-concurrency': { type: 'string', default: '200' },
  'connect-timeout-ms': { type: 'string', default: '15000' },
  'source-addrs': { type: 'string' },
  'drain-ms': { type: 'string', default: '10000' },
  'settle-ms': { type: 'string', default: '2000' },
  watchers: { type: 'string', default: '2' },
  'max-joins': { type: 'string', default: '100000' },
  'warmup-connections': { type: 'string', default: '3000' },
  'warmup-s': { type: 'string', default: '2' },
  timeout: { type: 'string', default: '300' },
  nodes: { type: 'string', default: '2' },
  adapter: { type: 'string', default: 'redis' },
  'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
  'nats-url': { type: 'string', default: 'nats://127.0.0.1:4222' },
  'redis-cluster-nodes': { type: 'string' },
  routing: { type: 'string', default: 'broadcast,interest' },
  churn: { type: 'string', default: '500' },
  engines: { type: 'string', default: HISTORY_ENGINES.join(',') },
  'server-node-args': { type: 'string', default: '' },
  'worker-node-args': { type: 'string', default: '' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const HELP = `Usage: node dist/bench/main.js <scenario> [options]
       npm run bench -- <scenario> [options]

Scenarios:
  fanout     N subscribers on one channel, publish as fast as possible (or --rate);
             delivered msgs/s, delivery ratio, server CPU µs per delivered message
  latency    fixed publish rate to N subscribers; publish→receive p50/p90/p99/max
  channels   N clients each on its own channel, publish to random channels (--batch)
  idle       N idle subscribed connections; server RSS per connection
  storm      open+subscribe N connections as fast as possible; handshakes/s
  presence   clients join/leave a presence channel; joins/s, member event accounting
  cross-node starts --nodes N Switchboard nodes on --adapter, subscribers split over them,
             publishes through node 1; per-node msgs/s, latency, CPU µs/msg, and in the
             same run a single-node reference (local adapter) at the same publish rate
  scale      1, 2, 4 … --nodes nodes, each with --subs per-user channels (default 300) and
             --rate REST events/s (default 50) to random users anywhere; per routing:
             node CPU µs per delivered message, engine messages per event, and the CPU
             a remote node spends per subscription change on node 1 (--churn channels)
  history    per engine (--engines local,redis,nats), a server with history on the channel
             and one without: publish rate at max rate, p50/p99 latency at --rate (200),
             side by side

Server under test (pick one; loopback only):
  --url http://127.0.0.1:PORT   a running Pusher-compatible server
  --server-pid PID              with --url: measure that process's CPU/RSS too
  --server switchboard          spawn node dist/src/cli/main.js (PORT/HOST/SWITCHBOARD_APP_* env)
  --server-cmd "CMD"            spawn CMD via sh; {port} {appId} {appKey} {appSecret} are substituted,
                                PORT and HOST are set in its environment
  --ready-path /up              spawned servers are ready when this answers 200
  --pin                         server on core 0, load generator on core 1 (taskset)
  --server-node-args="ARGS"     node flags for spawned Switchboard processes, e.g.
                                --server-node-args="--cpu-prof --cpu-prof-dir=/tmp/prof"
                                (write it with "=": the value starts with a dash)

Cluster (cross-node):
  --nodes N (2)                 Switchboard nodes to start (node dist/src/cli/main.js each)
  --adapter redis|nats|redis-cluster (redis)
  --redis-url redis://127.0.0.1:6379
  --nats-url nats://127.0.0.1:4222
  --redis-cluster-nodes H:P,... seed nodes (needed with --adapter redis-cluster)
  --routing broadcast,interest  scale: the clusterRouting values to measure
  --churn N (500)               scale: channels opened and closed on node 1 for the churn cost
  --engines local,redis,nats    history: the engines measured (Redis and NATS at the URLs above)
  Both phases publish at one fixed rate, evenly spaced: --rate, or else a quarter of what a 2 s
  max-rate pilot through node 1 reached. With --pin on 2 cores every Switchboard process
  shares core 0, so compare CPU per message, not msgs/s per node.

App / protocol:
  --app-id app-id --app-key app-key --app-secret app-secret
  --app-store config|postgres|mysql
                                where the spawned server looks the app up: the config (default) or a
                                table this tool creates (and drops) in the local database; reports the
                                queries that reached it (--app-store-url: the database, default local)
  --protocol pusher|native      native: WebSocket at --native-path (default /ws; "{appKey}" is
                                substituted), subscribe {"action":"subscribe"}, publish
                                POST /broadcast with --token (Bearer; without one the request
                                carries a Pusher signature)
  --native-settle-ms 500        native has no subscribe ack: wait this long after subscribing

Load shape:
  --subs N                      connections (defaults: fanout/latency/cross-node 1000,
                                channels/idle/storm 10000, presence 50 churners; Pusher caps
                                presence channels at 100 members incl. watchers)
  --channels K                  distinct channels (idle default 100, storm default 1)
  --duration S (10)             publish/churn phase length, seconds
  --max-messages M (1000000)    cap on published events
  --payload-bytes B (100)
  --rate R                      fixed publish rate, events/s (latency default 50)
  --concurrency C (8)           HTTP requests in flight (keep-alive sockets)
  --batch                       channels: publish with batch_events, 10 events per request
  --send                        channels with --protocol native: publish with POST /send?user=u-<i>
                                to client i's user instead of /broadcast to its channel; clients
                                connect with an HS256 JWT naming that user (a spawned server gets the
                                JWT secret; a --url server needs jwtSecret set to BENCH_JWT_SECRET
                                of bench/protocol.ts)
  --watchers W (2)              presence: members that stay and count member_added/removed
  --max-joins J (100000)        presence: cap on joins per churning client
  --warmup-connections N (3000) storm: open and close N connections first, so both sides run
                                compiled code (0: measure a cold server, JIT compilation included)
  --warmup-s S (2)              fanout, latency, channels: publish the same way for S seconds
                                before measuring (0: include the server's JIT warm-up)

Load generator:
  --workers W                   client worker processes (default ceil(N/15000), at least 1;
                                0 = in this process). A process may hold ~20000 open files.
  --connect-concurrency C (200) handshakes in flight (total over workers)
  --connect-timeout-ms (15000)
  --source-addrs K              bind connections to 127.0.0.1..K (default: only above 25000)
  --drain-ms (10000)            max wait for outstanding deliveries after publishing
  --settle-ms (2000)            idle: wait before reading RSS
  --timeout S (300)             hard stop for the whole run
  --worker-node-args="ARGS"     node flags for client workers, e.g. "--cpu-prof --cpu-prof-dir=DIR"

Output: a human table, then one JSON line (last line of stdout).`;

function int(name: string, v: string | undefined, min = 0): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min} (got "${v}")`);
  return n;
}

export function parseOptions(argv: string[]): { scenario: string | undefined; options: Options } {
  const { values: v, positionals } = parseArgs({ args: argv, options: spec, allowPositionals: true, strict: true });
  if (positionals.length > 1) throw new Error(`unexpected arguments: ${positionals.slice(1).join(' ')}`);
  if (v.server !== undefined && v.server !== 'switchboard')
    throw new Error(`--server only knows "switchboard"; use --server-cmd for others`);
  const targets = [v.url, v.server, v['server-cmd']].filter((x) => x !== undefined).length;
  if (targets > 1) throw new Error('use only one of --url, --server, --server-cmd');
  if (v['server-pid'] !== undefined && v.url === undefined) throw new Error('--server-pid goes with --url');
  if (v['app-store'] !== 'config' && v['app-store'] !== 'postgres' && v['app-store'] !== 'mysql') throw new Error('--app-store must be config, postgres or mysql');
  if (v['app-store'] !== 'config' && (v.url !== undefined || v['server-cmd'] !== undefined)) throw new Error('--app-store goes with a spawned Switchboard');
  if (v.protocol !== 'pusher' && v.protocol !== 'native') throw new Error('--protocol must be pusher or native');
  if (v.batch && v.protocol === 'native') throw new Error('--batch needs --protocol pusher (native has no batch publish)');
  if (positionals[0] === 'history') {
    if (v.url !== undefined || v['server-cmd'] !== undefined) throw new Error('history starts its own Switchboard processes: --url and --server-cmd do not apply');
    for (const u of [v['redis-url'], ...v['nats-url'].split(',')]) if (!isLoopbackHost(new URL(u.trim()).hostname)) throw new Error(`refusing non-loopback engine address ${u}: this tool only uses local services`);
  }
  if (v.send && v.protocol !== 'native') throw new Error('--send needs --protocol native (POST /send is a native API call)');
  if (v.send && positionals[0] !== 'channels') throw new Error('--send goes with the channels scenario (one client per user)');
  if (positionals[0] === 'cross-node' || positionals[0] === 'scale') {
    if (v.url !== undefined || v['server-cmd'] !== undefined)
      throw new Error(`${positionals[0]} starts its own Switchboard nodes: --url and --server-cmd do not apply`);
    if (v.adapter !== 'redis' && v.adapter !== 'nats' && v.adapter !== 'redis-cluster')
      throw new Error('--adapter must be redis, nats or redis-cluster');
    if (v.adapter === 'redis-cluster' && v['redis-cluster-nodes'] === undefined)
      throw new Error('--adapter redis-cluster needs --redis-cluster-nodes host:port[,host:port...]');
    const engines = [v['redis-url'], ...v['nats-url'].split(','), ...(v['redis-cluster-nodes']?.split(',').map((hp) => `redis://${hp}`) ?? [])];
    for (const u of engines) {
      let host: string;
      try {
        host = new URL(u.trim()).hostname;
      } catch {
        throw new Error(`invalid engine address "${u}"`);
      }
      if (!isLoopbackHost(host)) throw new Error(`refusing non-loopback engine address ${u}: this tool only uses local services`);
    }
  }
  const options: Options = {
    url: v.url,
    server: v.server === 'switchboard' ? 'switchboard' : undefined,
    serverCmd: v['server-cmd'],
    serverPid: int('server-pid', v['server-pid'], 1),
    readyPath: v['ready-path'],
    startupTimeoutMs: int('startup-timeout-ms', v['startup-timeout-ms'], 100)!,
    appId: v['app-id'],
    appKey: v['app-key'],
    appSecret: v['app-secret'],
    appStore: v['app-store'],
    appStoreUrl: v['app-store-url'],
    token: v.token,
    protocol: v.protocol,
    nativePath: v['native-path'],
    nativeSettleMs: int('native-settle-ms', v['native-settle-ms'])!,
    pin: v.pin,
    subs: int('subs', v.subs, 1),
    channels: int('channels', v.channels, 1),
    durationS: int('duration', v.duration, 0.1)!,
    maxMessages: int('max-messages', v['max-messages'], 1)!,
    payloadBytes: int('payload-bytes', v['payload-bytes'], 1)!,
    rate: int('rate', v.rate, 0.001),
    concurrency: int('concurrency', v.concurrency, 1)!,
    batch: v.batch,
    send: v.send,
    workers: int('workers', v.workers, 0),
    connectConcurrency: int('connect-concurrency', v['connect-concurrency'], 1)!,
    connectTimeoutMs: int('connect-timeout-ms', v['connect-timeout-ms'], 100)!,
    sourceAddrs: int('source-addrs', v['source-addrs'], 1),
    drainMs: int('drain-ms', v['drain-ms'])!,
    settleMs: int('settle-ms', v['settle-ms'])!,
    watchers: int('watchers', v.watchers, 1)!,
    maxJoins: int('max-joins', v['max-joins'], 1)!,
    warmupConnections: int('warmup-connections', v['warmup-connections'], 0)!,
    warmupS: int('warmup-s', v['warmup-s'], 0)!,
    timeoutS: int('timeout', v.timeout, 1)!,
    nodes: int('nodes', v.nodes, 2)!,
    adapter: v.adapter as ClusterAdapter,
    redisUrl: v['redis-url'],
    natsUrl: v['nats-url'],
    redisClusterNodes: v['redis-cluster-nodes'],
    routings: routingList(v.routing),
    churn: int('churn', v.churn, 0)!,
    historyEngines: historyEngines(v.engines),
    serverNodeArgs: splitArgs(v['server-node-args']),
    workerNodeArgs: splitArgs(v['worker-node-args']),
    help: v.help,
  };
  return { scenario: positionals[0], options };
}

function routingList(raw: string): Array<'broadcast' | 'interest'> {
  const list = raw.split(',').map((r) => r.trim());
  for (const r of list) if (r !== 'broadcast' && r !== 'interest') throw new Error(`--routing takes broadcast and/or interest (got "${r}")`);
  return list as Array<'broadcast' | 'interest'>;
}

function historyEngines(raw: string): HistoryEngine[] {
  const list = raw.split(',').map((e) => e.trim()).filter(Boolean);
  const unknown = list.filter((e) => !(HISTORY_ENGINES as readonly string[]).includes(e));
  if (list.length === 0 || unknown.length > 0) throw new Error(`--engines takes a comma-separated list of ${HISTORY_ENGINES.join(', ')}`);
  return list as HistoryEngine[];
}

function splitArgs(raw: string): string[] {
  return raw.split(/\s+/).filter(Boolean);
}
