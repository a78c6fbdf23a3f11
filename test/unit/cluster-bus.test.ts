import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ClusterBus } from '../../src/cluster/bus.js';
import { decodeWire } from '../../src/cluster/messages.js';
import type { ClusterEngine, EngineHandlers } from '../../src/cluster/engine.js';
import type { BusSink, CommandResult } from '../../src/core/bus.js';
import type { StateDelta } from '../../src/core/state-delta.js';
import { createLogger } from '../../src/log.js';
import { until } from '../helpers/wait.js';

/**
 * The bus over an in-memory engine that can lose messages: delivery is at most once, so a node
 * that misses another's announcements must notice (a gap in the sender's sequence) and catch up
 * from a snapshot, retrying until one arrives.
 */

type Envelope = { t: string; o: string; to?: string; r?: boolean };

/** Topics shared by every node; `drop` decides, per message and receiver, whether it is lost. */
class Broker {
  readonly nodes = new Set<{ id: () => string; handlers: EngineHandlers }>();
  drop: (e: Envelope, receiver: string) => boolean = () => false;

  transport(id: () => string): ClusterEngine {
    const broker = this;
    let me: { id: () => string; handlers: EngineHandlers } | undefined;
    return {
      name: 'memory',
      start(_topics, handlers) {
        me = { id, handlers };
        broker.nodes.add(me);
        return Promise.resolve();
      },
      // Every node hears every topic here: the routing cases run on the real engines (cluster contract).
      subscribe: () => Promise.resolve(),
      unsubscribe: () => Promise.resolve(),
      publish(topic, bytes) {
        const decoded = decodeWire(bytes);
        assert.ok(decoded.ok);
        const e = decoded.envelope as unknown as Envelope;
        for (const node of broker.nodes) {
          if (broker.drop(e, node.id())) continue;
          // Asynchronous, in order, like an engine.
          setImmediate(() => node.handlers.message(topic, bytes));
        }
      },
      close() {
        if (me) broker.nodes.delete(me);
        return Promise.resolve();
      },
    };
  }
}

/** A hub stand-in: owns a list of deltas and keeps what it has been told of the others' shares. */
class Sink implements BusSink {
  own: StateDelta[] = [];
  readonly shares = new Map<string, Map<string, StateDelta>>();

  deliver(): void {}
  applyRemote(node: string, deltas: readonly StateDelta[], replace: boolean): void {
    let share = this.shares.get(node);
    if (!share || replace) this.shares.set(node, (share = new Map<string, StateDelta>()));
    for (const d of deltas) if (d.kind === 'connections') share.set(d.appId, d);
  }
  dropNode(node: string, _reportLeaves: boolean): void {
    this.shares.delete(node);
  }
  ownedState(): StateDelta[] {
    return this.own;
  }
  execute(): CommandResult {
    return {};
  }
  /** Connections another node has, as this node believes. */
  countOf(node: string, appId: string): number | undefined {
    const d = this.shares.get(node)?.get(appId);
    return d?.kind === 'connections' ? d.count : undefined;
  }
}

const OPTIONS = { heartbeatIntervalMs: 20, nodeTimeoutMs: 5000, requestTimeoutMs: 500, dataTopics: 2, engineTimeoutMs: 5000, startTimeoutMs: 5000 };

describe('ClusterBus over a lossy engine', () => {
  const buses: ClusterBus[] = [];
  after(async () => {
    for (const bus of buses) await bus.close();
  });

  async function node(broker: Broker): Promise<{ bus: ClusterBus; sink: Sink }> {
    let bus: ClusterBus | undefined = undefined;
    const transport = broker.transport(() => (bus as ClusterBus).nodeId);
    bus = new ClusterBus(transport, OPTIONS, createLogger('silent'));
    const sink = new Sink();
    await bus.start(sink);
    buses.push(bus);
    return { bus, sink };
  }

  /** What `a` announces now and owns from now on. */
  function announce(a: { bus: ClusterBus; sink: Sink }, appId: string, count: number): void {
    const delta: StateDelta = { kind: 'connections', appId, count };
    a.sink.own = [...a.sink.own.filter((d) => d.appId !== appId), delta];
    a.bus.announce(delta);
  }

  it("catches up from a snapshot after missing one of another node's announcements", async () => {
    const broker = new Broker();
    const a = await node(broker);
    const b = await node(broker);
    announce(a, 'one', 1);
    await until(() => b.sink.countOf(a.bus.nodeId, 'one') === 1, 'b to hear of a first announcement');

    // b loses a's next announcement; nothing about it comes again, only heartbeats.
    let lost = 0;
    broker.drop = (e, receiver) => {
      if (receiver === b.bus.nodeId && e.o === a.bus.nodeId && e.t === 'state' && !e.r && lost === 0) {
        lost += 1;
        return true;
      }
      return false;
    };
    announce(a, 'two', 2);
    await until(() => b.sink.countOf(a.bus.nodeId, 'two') === 2, 'b to learn the lost announcement from a snapshot');
    assert.equal(lost, 1);
    assert.equal(b.sink.countOf(a.bus.nodeId, 'one'), 1);
  });

  it('asks again on a later heartbeat when the snapshot it asked for is lost too', async () => {
    const broker = new Broker();
    const a = await node(broker);
    const b = await node(broker);
    announce(a, 'one', 1);
    await until(() => b.sink.countOf(a.bus.nodeId, 'one') === 1, 'b to hear of a first announcement');

    let lostAnnouncements = 0;
    let lostSnapshots = 0;
    broker.drop = (e, receiver) => {
      if (receiver !== b.bus.nodeId || e.o !== a.bus.nodeId || e.t !== 'state') return false;
      if (!e.r && lostAnnouncements === 0) {
        lostAnnouncements += 1;
        return true;
      }
      if (e.r && e.to === b.bus.nodeId && lostSnapshots < 2) {
        lostSnapshots += 1;
        return true;
      }
      return false;
    };
    announce(a, 'two', 2);
    await until(() => b.sink.countOf(a.bus.nodeId, 'two') === 2, 'b to catch up despite lost snapshots');
    assert.equal(lostSnapshots, 2);
  });
});
