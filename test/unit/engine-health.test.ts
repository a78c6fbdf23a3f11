import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClusterBus } from '../../src/cluster/bus.js';
import { EngineStartError } from '../../src/cluster/health.js';
import type { ClusterEngine, EngineHandlers } from '../../src/cluster/engine.js';
import type { BusSink, CommandResult } from '../../src/core/bus.js';
import { createLogger } from '../../src/log.js';
import { until } from '../helpers/wait.js';

/** An engine that stays connected; `frozen`, it takes messages and answers nothing (a SIGSTOPped server). */
class FreezableEngine implements ClusterEngine {
  readonly name = 'freezable';
  frozen = false;
  /** Messages handed to the engine while frozen. */
  heldWhileFrozen = 0;
  private handlers: EngineHandlers | undefined;

  start(_topics: readonly string[], handlers: EngineHandlers): Promise<void> {
    this.handlers = handlers;
    return Promise.resolve();
  }
  publish(topic: string, bytes: Buffer): void {
    if (this.frozen) {
      this.heldWhileFrozen += 1;
      return;
    }
    setImmediate(() => this.handlers?.message(topic, bytes)); // the echo every engine gives its publisher
  }
  subscribe(): Promise<void> {
    return Promise.resolve();
  }
  unsubscribe(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const sink: BusSink = {
  deliver: () => undefined,
  applyRemote: () => undefined,
  dropNode: () => undefined,
  ownedState: () => [],
  execute: (): CommandResult => ({}),
};

const HEARTBEAT_MS = 20;
const ENGINE_TIMEOUT_MS = 150;

describe('engine health: a connected engine that stops answering', () => {
  it('is noticed by the heartbeat round trip within engineTimeoutMs, gets one heartbeat per tick meanwhile, and is trusted again once it answers', async () => {
    const engine = new FreezableEngine();
    const options = { heartbeatIntervalMs: HEARTBEAT_MS, nodeTimeoutMs: 5000, requestTimeoutMs: 500, dataTopics: 2, engineTimeoutMs: ENGINE_TIMEOUT_MS, startTimeoutMs: 1000 };
    const bus = new ClusterBus(engine, options, createLogger('silent'));
    await bus.start(sink);
    try {
      await new Promise((resolve) => setTimeout(resolve, ENGINE_TIMEOUT_MS * 2));
      assert.equal(bus.isHealthy, true, 'a live engine is not taken for a frozen one');
      engine.frozen = true;
      const took = await until(() => !bus.isHealthy, 'the bus to call the engine unhealthy', 2000);
      assert.ok(took <= ENGINE_TIMEOUT_MS + HEARTBEAT_MS * 5, `noticed after ${took} ms`);
      const held = engine.heldWhileFrozen;
      for (let i = 0; i < 100; i++) bus.publish('app', { kind: 'event', channel: 'c', event: 'e', data: String(i) });
      await new Promise((resolve) => setTimeout(resolve, HEARTBEAT_MS * 5));
      // Publishes are not handed to the frozen engine; only heartbeats, one per tick.
      assert.ok(engine.heldWhileFrozen - held <= 7, `${engine.heldWhileFrozen - held} messages handed to a frozen engine`);
      engine.frozen = false;
      await until(() => bus.isHealthy, 'the bus to trust the engine again', 2000);
    } finally {
      await bus.close();
    }
  });

  it('gives up connecting at start after startTimeoutMs with an EngineStartError', async () => {
    const silent: ClusterEngine = { name: 'silent', start: () => new Promise<void>(() => undefined), publish: () => undefined, subscribe: () => Promise.resolve(), unsubscribe: () => Promise.resolve(), close: () => Promise.resolve() };
    const bus = new ClusterBus(silent, { heartbeatIntervalMs: 20, nodeTimeoutMs: 5000, requestTimeoutMs: 500, dataTopics: 2, engineTimeoutMs: 150, startTimeoutMs: 200 }, createLogger('silent'));
    const started = Date.now();
    await assert.rejects(bus.start(sink), (err: unknown) => err instanceof EngineStartError && /did not answer within 200 ms/.test(err.message));
    assert.ok(Date.now() - started < 1000);
  });
});
