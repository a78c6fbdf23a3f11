import { connected, pusherClient, serverSdk, subscribed, type PusherJs } from '../helpers/clients.js';
import { killEverything, makeTmpDir, natsEnv, redisEnv, startNatsServer, startNode, startRedisServer, uniquePrefix, writeConfig, type EngineEnv, type SwitchboardNode, type ThrowawayServer } from '../helpers/cluster.js';
import { connectNative, subscribeNative, type NativeClient } from '../helpers/native.js';
import { restGet } from '../helpers/raw-pusher.js';
import { APP } from '../helpers/server.js';
import { startReceiver, type WebhookReceiver } from '../helpers/webhook-receiver.js';
import { TcpProxy } from './proxy.js';
import { eventually } from '../helpers/wait.js';

/**
 * A chaos run with real processes: three nodes on a private engine (node c reaches it through a
 * TCP proxy the run controls), pusher-js presence members and native subscribers on each, a
 * REST publisher throughout, and a durable webhook queue behind a receiver that fails now and
 * then. Faults, in rounds: SIGKILL of a node (and a new one in its place), a partition of node c
 * from the engine and its heal, a restart of the engine. After each fault the run checks what
 * must hold and throws on the first thing that does not: a ghost presence member, a member
 * missing after a heal, a duplicate delivery, a lost webhook, a node that exited, a /ready that lies.
 */

export type EngineName = 'redis' | 'nats';

export interface ChaosOptions {
  readonly engine: EngineName;
  /** Fault rounds (each: kill, partition + heal, engine restart). */
  readonly rounds: number;
  /** The nodes' clusterRouting (default broadcast). */
  readonly routing?: 'broadcast' | 'interest';
  readonly log?: (line: string) => void;
}

const CHANNEL = 'chaos-feed';
const PRESENCE = 'presence-chaos';
/** Generous bounds for a loaded machine; each wait ends as soon as its condition holds. */
const SETTLE_MS = 15_000;

interface Member {
  readonly user: string;
  readonly node: SwitchboardNode;
  readonly client: PusherJs;
  /** Publish sequence numbers received on CHANNEL, in order. */
  readonly seen: number[];
}

async function startEngine(engine: EngineName): Promise<{ server: ThrowawayServer; env: (port: number) => EngineEnv }> {
  if (engine === 'redis') {
    const server = await startRedisServer({ persistent: true });
    return { server, env: (port) => ({ ...redisEnv(`redis://127.0.0.1:${port}`), SWITCHBOARD_WEBHOOK_QUEUE: 'redis' }) };
  }
  const server = await startNatsServer();
  return { server, env: (port) => ({ ...natsEnv(`nats://127.0.0.1:${port}`), SWITCHBOARD_WEBHOOK_QUEUE: 'nats' }) };
}

function fail(what: string, detail: unknown): never {
  throw new Error(`chaos: ${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
}

export async function runChaos(options: ChaosOptions): Promise<{ published: number; webhooks: number }> {
  const log = options.log ?? (() => undefined);
  const { server: engine, env } = await startEngine(options.engine);
  const proxy = await TcpProxy.start(engine.port);
  const receiver: WebhookReceiver = await startReceiver({ failTimes: 3 });
  const prefix = uniquePrefix(`chaos-${options.engine}`);
  const configFile = writeConfig(makeTmpDir('chaos'), { apps: [{ ...APP, webhooks: [{ url: receiver.url, events: ['channel_occupied'], channelPrefix: 'wh-' }] }] });
  const common = {
    SWITCHBOARD_WEBHOOK_LEAVE_DELAY_MS: '0',
    SWITCHBOARD_WEBHOOK_QUEUE_LEASE_MS: '1500',
    SWITCHBOARD_WEBHOOK_QUEUE_POLL_MS: '250',
    SWITCHBOARD_WEBHOOK_TIMEOUT_MS: '1000',
    SWITCHBOARD_ENGINE_TIMEOUT_MS: '1000',
  };
  const launch = (name: string, port: number): Promise<SwitchboardNode> => startNode(name, { engine: { ...env(port), ...common }, prefix, configFile, routing: options.routing ?? 'broadcast' });

  const nodes = new Map<string, SwitchboardNode>();
  const members: Member[] = [];
  const natives: NativeClient[] = [];
  /** Channels whose channel_occupied a node pushed to the queue (subscribed while that node was healthy). */
  const webhookChannels: string[] = [];
  let publishing = true;
  let published = 0;
  let publisher: Promise<void> | undefined;

  const live = (): SwitchboardNode[] => [...nodes.values()].filter((n) => n.child.exitCode === null && n.child.signalCode === null);
  const expectAlive = (): void => {
    for (const node of nodes.values()) if (node.child.exitCode !== null) fail('a node exited', node.tail());
  };
  const usersOn = async (node: SwitchboardNode): Promise<string[]> =>
    ((await restGet(serverSdk(node.server), `/channels/${PRESENCE}/users`)) as { users: Array<{ id: string }> }).users.map((u) => u.id).sort();
  const membersOf = (alive: (m: Member) => boolean): string[] => members.filter(alive).map((m) => m.user).sort();
  /** Every healthy node lists exactly the members whose node is alive and connected to the engine. */
  const presenceSettles = async (expected: string[], on: SwitchboardNode[], what: string): Promise<void> => {
    for (const node of on) {
      await eventually(async () => JSON.stringify(await usersOn(node)) === JSON.stringify(expected), `${what}: ${node.name} lists ${expected.join(',')}`, SETTLE_MS).catch(
        async (err: Error) => fail(what, `${err.message}; it lists ${(await usersOn(node).catch(() => [])).join(',')}`),
      );
    }
  };
  const readyIs = async (node: SwitchboardNode, status: number, what: string): Promise<void> => {
    await eventually(async () => (await node.ready()).status === status, `${node.name} /ready ${status}`, SETTLE_MS).catch(() => fail(`a /ready that lies (${what})`, node.tail()));
  };

  const addMember = async (node: SwitchboardNode, user: string): Promise<void> => {
    const client = pusherClient(node.server, { presence: { user_id: user } });
    await connected(client);
    const seen: number[] = [];
    const feed = client.subscribe(CHANNEL);
    feed.bind('seq', (data: { n: number }) => seen.push(data.n));
    await subscribed(client, PRESENCE);
    members.push({ user, node, client, seen });
    const native = await connectNative(node.server, '/ws?ack=1');
    await subscribeNative(native, CHANNEL);
    natives.push(native);
  };
  const raiseWebhook = async (node: SwitchboardNode): Promise<void> => {
    const channel = `wh-${webhookChannels.length}-${node.name}`;
    const client = pusherClient(node.server);
    await connected(client);
    await subscribed(client, channel);
    webhookChannels.push(channel);
    client.disconnect();
    // Accepted once stored: the node has sent it (or tried). One raised just before a fault may be lost (counted), as documented.
    await receiver.until(() => receiver.requests.some((r) => r.body?.events.some((e) => e.channel === channel)), `a request for ${channel}`, SETTLE_MS);
  };

  try {
    for (const [name, port] of [['a', engine.port], ['b', engine.port], ['c', proxy.port]] as const) nodes.set(name, await launch(name, port));
    for (const node of nodes.values()) await addMember(node, `member-${node.name}`);
    await presenceSettles(membersOf(() => true), live(), 'presence at start');
    publisher = (async () => {
      // REST publishes through node b (never killed), one at a time, for the whole run.
      while (publishing) {
        const b = nodes.get('b') as SwitchboardNode;
        await serverSdk(b.server)
          .trigger(CHANNEL, 'seq', { n: published })
          .then(() => (published += 1))
          .catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();

    for (let round = 1; round <= options.rounds; round++) {
      // 1. SIGKILL a node while it holds webhook leases (the receiver fails a few), then a new one in its place.
      const victimName = round % 2 === 1 ? 'a' : `a${round - 1}`;
      const victim = nodes.get(victimName) as SwitchboardNode;
      receiver.failTimes = 3;
      // The victim tries them, fails (the receiver refuses 3), and holds their leases when it dies.
      await raiseWebhook(victim);
      await raiseWebhook(victim);
      log(`round ${round}: SIGKILL ${victim.name}`);
      await victim.kill();
      nodes.delete(victimName);
      const dead = new Set([victim.name]);
      await presenceSettles(membersOf((m) => !dead.has(m.node.name) && m.node.child.exitCode === null && m.node.child.signalCode === null), live(), 'a ghost member after SIGKILL');
      const fresh = await launch(`a${round}`, engine.port);
      nodes.set(fresh.name, fresh);
      await addMember(fresh, `member-${fresh.name}`);
      const aliveMembers = (): string[] => membersOf((m) => m.node.child.exitCode === null && m.node.child.signalCode === null);
      await presenceSettles(aliveMembers(), live(), 'presence after a new node joined');
      expectAlive();

      // 2. Partition node c from the engine; heal.
      const c = nodes.get('c') as SwitchboardNode;
      log(`round ${round}: partition c`);
      proxy.cut();
      await readyIs(c, 503, 'c is cut off');
      await readyIs(nodes.get('b') as SwitchboardNode, 200, 'b is not');
      const others = live().filter((n) => n !== c);
      await presenceSettles(aliveMembers().filter((u) => u !== 'member-c'), others, 'a ghost member during a partition');
      proxy.heal();
      log(`round ${round}: heal`);
      await readyIs(c, 200, 'c is back');
      await presenceSettles(aliveMembers(), live(), 'a member missing after the heal');
      await raiseWebhook(c);
      expectAlive();

      // 3. Restart the engine (SIGKILL, start on the same port, its data kept).
      log(`round ${round}: engine restart`);
      await engine.stop();
      for (const node of live()) await readyIs(node, 503, 'the engine is down');
      await engine.start();
      for (const node of live()) await readyIs(node, 200, 'the engine is back');
      await presenceSettles(aliveMembers(), live(), 'presence after the engine restart');
      await raiseWebhook(nodes.get('b') as SwitchboardNode);
      expectAlive();
    }

    publishing = false;
    await publisher;
    // Duplicate deliveries: each sequence number at most once per subscriber (missing some is allowed: at most once).
    for (const m of members) {
      if (new Set(m.seen).size !== m.seen.length) fail('a duplicate delivery (pusher-js)', { user: m.user, seen: m.seen });
    }
    for (const [i, n] of natives.entries()) {
      const seqs = n.texts.map((t) => (JSON.parse(t) as { n?: number }).n).filter((x): x is number => typeof x === 'number');
      if (new Set(seqs).size !== seqs.length) fail('a duplicate delivery (native)', { client: i, seqs });
    }
    // Lost webhooks: every channel_occupied a healthy node raised arrives (a repeat keeps its id).
    await receiver
      .until(() => webhookChannels.every((ch) => receiver.eventsOf(ch).length > 0), 'every queued webhook', SETTLE_MS * 2)
      .catch(() =>
        fail('a lost webhook', `expected ${webhookChannels.join(',')}, got ${receiver.delivered().map((e) => e.channel).join(',')}\n${live().map((n) => n.tail(40)).join('\n')}`),
      );
    const byId = new Map<string, string>();
    for (const r of receiver.requests.filter((q) => q.status < 300)) {
      const id = String(r.headers['x-switchboard-event-id']);
      const channel = r.body?.events[0]?.channel ?? '';
      if (byId.has(id) && byId.get(id) !== channel) fail('one event id for two events', { id, channel });
      byId.set(id, channel);
    }
    expectAlive();
    return { published, webhooks: webhookChannels.length };
  } finally {
    publishing = false;
    await publisher?.catch(() => undefined);
    for (const m of members) m.client.disconnect();
    for (const n of natives) n.ws.terminate();
    await Promise.all(live().map((n) => n.stop()));
    await receiver.close();
    await proxy.close();
    await killEverything();
  }
}
