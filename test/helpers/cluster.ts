import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { send, type Reply } from './signed-request.js';
import { eventually } from './wait.js';

/**
 * Clusters of real Switchboard processes for the cluster contract suite, and throwaway engines
 * (a standalone redis-server, a 3-master Redis Cluster, a nats-server) on free loopback ports.
 * Everything started here is registered and killed by `killEverything()` (and, as a last
 * resort, when the test process exits), so a failing test leaves nothing running.
 */

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The first `name` on PATH (or in /usr/sbin, where Debian puts nats-server), else `name` itself. */
function binary(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/bin'].filter(Boolean);
  return dirs.map((dir) => join(dir, name)).find((file) => existsSync(file)) ?? name;
}
export const REDIS_SERVER = binary('redis-server');
export const REDIS_CLI = binary('redis-cli');
export const NATS_SERVER = binary('nats-server');

const running = new Set<ChildProcess>();
const tmpDirs = new Set<string>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

function track(child: ChildProcess): ChildProcess {
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

/** SIGKILLs every process this module started that is still running. */
export async function killEverything(): Promise<void> {
  await Promise.all([...running].map((child) => stopProcess(child, 'SIGKILL', 5000)));
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
  tmpDirs.clear();
}

export function makeTmpDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `switchboard-${label}-`));
  tmpDirs.add(dir);
  return dir;
}

/** A port that was free a moment ago (the OS picks it; the caller binds it right away). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createTcpServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The config of in-process nodes on the machine's Redis (the same object for each node of one
 * cluster): a prefix of their own, and a node timeout far longer than any test.
 */
export function redisNodeConfig<A>(label: string, apps: A[]) {
  return {
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent' as const,
    adapter: 'redis' as const,
    clusterPrefix: uniquePrefix(label),
    heartbeatIntervalMs: 200,
    nodeTimeoutMs: 60_000,
    apps,
  };
}

/** A prefix no other run shares, for keys, channels and subjects on a shared engine. */
export function uniquePrefix(label: string): string {
  return `sbtest-${label}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. Resolves with the exit code (null when killed). */
export function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    child.kill(signal);
  });
}


// --- Switchboard nodes ---

/** How nodes reach the engine, as the environment variables a user would set. */
export type EngineEnv = Record<string, string>;

export function redisEnv(url: string): EngineEnv {
  return { SWITCHBOARD_ADAPTER: 'redis', SWITCHBOARD_REDIS_URL: url };
}

export function redisClusterEnv(nodes: readonly string[]): EngineEnv {
  return { SWITCHBOARD_ADAPTER: 'redis-cluster', SWITCHBOARD_REDIS_CLUSTER_NODES: nodes.join(',') };
}

export function natsEnv(url: string): EngineEnv {
  return { SWITCHBOARD_ADAPTER: 'nats', SWITCHBOARD_NATS_URL: url };
}

export interface NodeOptions {
  readonly engine: EngineEnv;
  readonly prefix: string;
  /** The JSON config file (apps); see writeConfig(). */
  readonly configFile: string;
  readonly role?: 'all' | 'websocket' | 'api';
  /** clusterRouting (default broadcast). */
  readonly routing?: 'broadcast' | 'interest';
  /** clusterInterestGraceMs, with interest routing. */
  readonly interestGraceMs?: number;
  readonly heartbeatIntervalMs?: number;
  readonly nodeTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** Wait until /ready answers 200 (default true). */
  readonly waitReady?: boolean;
}

/** One Switchboard child process. */
export class SwitchboardNode {
  /** Every line the process wrote, stdout and stderr. */
  readonly output: string[] = [];
  readonly exited: Promise<number | null>;
  port = 0;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * The node as the client helpers (pusherClient, serverSdk, RawClient.connect, connectNative,
   * api, send) take it: they read only `port` and `url`.
   */
  get server(): Switchboard {
    return { port: this.port, url: this.url } as unknown as Switchboard; // a structural stand-in: the helpers touch port and url only
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** GET /ready. */
  ready(): Promise<Reply> {
    return send(this.server, 'GET', '/ready');
  }

  /** SIGTERM (drain), SIGKILL after 5 s; resolves with the exit code. */
  stop(): Promise<number | null> {
    return stopProcess(this.child, 'SIGTERM', 5000);
  }

  /** SIGKILL: the node dies without a word to the cluster. */
  kill(): Promise<number | null> {
    return stopProcess(this.child, 'SIGKILL', 5000);
  }

  /** The last lines of output, for failure messages. */
  tail(lines = 20): string {
    return `${this.name} (pid ${this.pid}, port ${this.port}):\n${this.output.slice(-lines).join('\n')}`;
  }
}

/** Writes a config file with the given apps (and anything else) into `dir`. */
export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, `config-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

const BANNER = /Switchboard listening on \S+:(\d+) /;

/** Starts `node dist/src/cli/main.js` on a free port and waits for its banner (and /ready 200). */
export async function startNode(name: string, opts: NodeOptions): Promise<SwitchboardNode> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('SWITCHBOARD_')) env[k] = v;
  Object.assign(env, opts.engine, {
    HOST: '127.0.0.1',
    PORT: '0',
    SWITCHBOARD_LOG_LEVEL: 'info',
    SWITCHBOARD_CLUSTER_PREFIX: opts.prefix,
    SWITCHBOARD_ROLE: opts.role ?? 'all',
    SWITCHBOARD_CLUSTER_ROUTING: opts.routing ?? 'broadcast',
    ...(opts.interestGraceMs === undefined ? {} : { SWITCHBOARD_CLUSTER_INTEREST_GRACE_MS: String(opts.interestGraceMs) }),
    SWITCHBOARD_HEARTBEAT_INTERVAL_MS: String(opts.heartbeatIntervalMs ?? 200),
    SWITCHBOARD_NODE_TIMEOUT_MS: String(opts.nodeTimeoutMs ?? 1500),
    SWITCHBOARD_CLUSTER_REQUEST_TIMEOUT_MS: String(opts.requestTimeoutMs ?? 1000),
    SWITCHBOARD_SHUTDOWN_TIMEOUT_MS: '2000',
  });
  const child = track(spawn(process.execPath, [MAIN, '--config', opts.configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const node = new SwitchboardNode(name, child);
  const port = await new Promise<number>((resolve, reject) => {
    let pending = '';
    const onData = (chunk: Buffer): void => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        node.output.push(line);
        if (node.output.length > 500) node.output.splice(0, node.output.length - 500);
        const m = BANNER.exec(line);
        if (m) resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`${name} exited (${code ?? signal}) before listening:\n${node.output.join('\n')}${pending}`)));
    // Generous: on a loaded shared machine three nodes loading at once took longer than 10 s.
    const timer = setTimeout(() => reject(new Error(`${name} did not print its banner in 30 s:\n${node.output.join('\n')}`)), 30_000);
    timer.unref();
  }).catch(async (err: unknown) => {
    await node.kill();
    throw err;
  });
  node.port = port;
  if (opts.waitReady ?? true) {
    await eventually(async () => (await node.ready()).status === 200, `${name} /ready 200\n${node.tail()}`, 10_000).catch(async (err: unknown) => {
      await node.kill();
      throw err;
    });
  }
  return node;
}

/** Starts `count` nodes side by side; if one fails, the others are killed too. */
export async function startNodes(count: number, opts: NodeOptions, namePrefix = 'node'): Promise<SwitchboardNode[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, (_, i) => startNode(`${namePrefix}${i + 1}`, opts)));
  const nodes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(nodes.map((n) => n.kill()));
    throw failed.reason;
  }
  return nodes;
}

export async function stopNodes(nodes: Iterable<SwitchboardNode>): Promise<void> {
  await Promise.all([...nodes].map((n) => n.stop()));
}

/** A keep-alive agent for bursts of HTTP calls; destroy() it after. */
export function keepAliveAgent(maxSockets: number): Agent {
  return new Agent({ keepAlive: true, maxSockets });
}

// --- engines ---

function runFile(file: string, args: readonly string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Resolves with the first bytes a TCP server sends after `hello` (or on connect, without it). */
function tcpProbe(port: number, hello: string | undefined, timeoutMs = 500): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer on port ${port}`));
    }, timeoutMs);
    socket.once('connect', () => {
      if (hello !== undefined) socket.write(hello);
    });
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(data.toString('utf8'));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Whether a Redis answers PING on `port`. */
export async function redisAnswers(port: number): Promise<boolean> {
  try {
    return (await tcpProbe(port, 'PING\r\n')).startsWith('+PONG');
  } catch {
    return false;
  }
}

/** Whether a NATS server greets on `port`. */
export async function natsAnswers(port: number): Promise<boolean> {
  try {
    return (await tcpProbe(port, undefined)).startsWith('INFO ');
  } catch {
    return false;
  }
}

/** An engine process that can be stopped and started again on the same port. */
export interface ThrowawayServer {
  readonly port: number;
  readonly url: string;
  /** Kills the server (SIGKILL: an outage, not a clean shutdown). */
  readonly stop: () => Promise<void>;
  /** Starts it again on the same port and waits until it answers. */
  readonly start: () => Promise<void>;
  /** SIGSTOP: the server keeps its connections open and answers nothing (a frozen engine). */
  readonly pause: () => void;
  /** SIGCONT after pause(). */
  readonly resume: () => void;
}

function spawnLogged(file: string, args: readonly string[], log: string[]): ChildProcess {
  const child = track(spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  const keep = (chunk: Buffer): void => {
    log.push(chunk.toString('utf8'));
    if (log.length > 200) log.splice(0, log.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

/**
 * A standalone redis-server on a free port, without persistence; `persistent`: with an
 * append-only file synced on every write, so what it holds survives a SIGKILL and restart.
 */
export async function startRedisServer({ persistent = false } = {}): Promise<ThrowawayServer> {
  const port = await freePort();
  const log: string[] = [];
  let child: ChildProcess | undefined;
  const persistence = persistent ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', makeTmpDir('redis-aof')] : ['--appendonly', 'no'];
  const start = async (): Promise<void> => {
    child = spawnLogged(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--daemonize', 'no'], log);
    await eventually(() => redisAnswers(port), `redis-server on ${port}\n${log.join('')}`, 5000);
  };
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      if (child) await stopProcess(child, 'SIGKILL');
    },
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  };
}

/** A nats-server with JetStream on a free port, storing in a temporary directory. */
export async function startNatsServer(): Promise<ThrowawayServer> {
  const port = await freePort();
  const dir = makeTmpDir('nats');
  const log: string[] = [];
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    child = spawnLogged(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], log);
    await eventually(() => natsAnswers(port), `nats-server on ${port}\n${log.join('')}`, 5000);
  };
  await start();
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      if (child) await stopProcess(child, 'SIGKILL');
    },
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  };
}

export interface ThrowawayRedisCluster {
  /** `127.0.0.1:port` of each master. */
  readonly nodes: readonly string[];
  /** Kills every master. */
  readonly stop: () => Promise<void>;
  /** Starts every master again from its nodes.conf and waits for cluster_state:ok. */
  readonly start: () => Promise<void>;
}

async function clusterOk(port: number): Promise<boolean> {
  try {
    return /cluster_state:ok/.test(await runFile(REDIS_CLI, ['-p', String(port), 'cluster', 'info'], 2000));
  } catch {
    return false;
  }
}

/** Three masters from redis-server on free ports, joined with `redis-cli --cluster create`. */
/**
 * A throwaway Redis Cluster started on first use, for the store contract runners: `client()`
 * gives a new client each call (another "node"); `stop()` ends the cluster if it was started.
 */
export function lazyRedisCluster(): { client(): Promise<Cluster>; stop(): Promise<void> } {
  let cluster: Promise<ThrowawayRedisCluster> | undefined;
  return {
    client: async () => {
      const started = await (cluster ??= startRedisCluster());
      return new Cluster(started.nodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) })));
    },
    stop: async () => {
      await (await cluster?.catch(() => undefined))?.stop();
    },
  };
}

export async function startRedisCluster(): Promise<ThrowawayRedisCluster> {
  const dir = makeTmpDir('redis-cluster');
  const ports = await distinctFreePorts(3);
  const log: string[] = [];
  const children = new Map<number, ChildProcess>();
  const launch = async (): Promise<void> => {
    for (const port of ports) {
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`)];
      args.push('--cluster-node-timeout', '2000', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir);
      children.set(port, spawnLogged(REDIS_SERVER, args, log));
    }
    await Promise.all(ports.map((port) => eventually(() => redisAnswers(port), `redis cluster node on ${port}\n${log.join('')}`, 5000)));
  };
  const stop = async (): Promise<void> => {
    await Promise.all([...children.values()].map((child) => stopProcess(child, 'SIGKILL')));
  };
  try {
    await launch();
    await runFile(REDIS_CLI, ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], 20_000);
    await Promise.all(ports.map((port) => eventually(() => clusterOk(port), `cluster_state:ok on ${port}`, 10_000, 100)));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`),
    stop,
    start: async () => {
      // nodes-<port>.conf keeps each node's id and slots, so the restarted masters find each other again.
      await launch();
      await Promise.all(ports.map((port) => eventually(() => clusterOk(port), `cluster_state:ok on ${port} after restart`, 15_000, 100)));
    },
  };
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  // A Redis Cluster node also listens on port + 10000 (its bus), so that one must be free too.
  while (ports.size < count) {
    const port = await freePort();
    if (port + 10_000 > 65_535) continue;
    if (await portTaken(port + 10_000)) continue;
    ports.add(port);
  }
  return [...ports];
}

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createTcpServer();
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

/** Why an engine cannot be used here, or undefined when it can. */
export async function sharedRedisMissing(port = 6379): Promise<string | undefined> {
  return (await redisAnswers(port)) ? undefined : `no Redis answers PING on 127.0.0.1:${port}`;
}

export async function sharedNatsMissing(port = 4222): Promise<string | undefined> {
  return (await natsAnswers(port)) ? undefined : `no NATS server greets on 127.0.0.1:${port}`;
}

export function redisBinariesMissing(): string | undefined {
  for (const file of [REDIS_SERVER, REDIS_CLI]) if (!existsSync(file)) return `${file} is not installed`;
  return undefined;
}

export function natsBinaryMissing(): string | undefined {
  return existsSync(NATS_SERVER) ? undefined : `${NATS_SERVER} is not installed`;
}

// --- clients for bursts ---

/**
 * A raw Pusher-protocol subscriber that only counts: for 10,000 frames the general RawClient's
 * find-on-every-frame waiting would be quadratic. Records, per event name, the payloads in order.
 */
export class CountingSubscriber {
  readonly received = new Map<string, string[]>();
  total = 0;
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];
  private readonly ws: WebSocket;
  private socketId: string | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { event: string; channel?: string; data?: unknown };
      if (m.event === 'pusher:connection_established') this.socketId = (JSON.parse(m.data as string) as { socket_id: string }).socket_id;
      const key = `${m.channel ?? ''}|${m.event}`;
      let list = this.received.get(key);
      if (!list) this.received.set(key, (list = []));
      list.push(typeof m.data === 'string' ? m.data : JSON.stringify(m.data));
      if (!m.event.startsWith('pusher')) this.total += 1;
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(port: number, key: string): Promise<CountingSubscriber> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/app/${key}?protocol=7&client=raw&version=1.0`);
    const sub = new CountingSubscriber(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await sub.until(() => sub.socketId !== undefined, 3000);
    return sub;
  }

  /** Frames of `event` on `channel`, in arrival order. */
  of(channel: string, event: string): string[] {
    return this.received.get(`${channel}|${event}`) ?? [];
  }

  async subscribe(channel: string): Promise<void> {
    this.ws.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel } }));
    await this.until(() => this.of(channel, 'pusher_internal:subscription_succeeded').length > 0, 3000);
  }

  async until(cond: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode}) while waiting (${this.total} events received)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms (${this.total} events received)`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}
