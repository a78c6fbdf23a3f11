import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { serverSdk } from '../helpers/clients.js';
import { freePort, sharedRedisMissing, uniquePrefix } from '../helpers/cluster.js';
import { sample, scrape } from '../helpers/metrics.js';
import { startServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

const skip = await sharedRedisMissing();

describe('cluster engine metrics (two nodes on Redis)', { skip }, () => {
  let a: Switchboard;
  let b: Switchboard;
  const value = async (node: Switchboard, series: string): Promise<number> => sample((await scrape(node)).text, series) ?? 0;

  before(async () => {
    const shared = { adapter: 'redis' as const, clusterPrefix: uniquePrefix('metrics'), heartbeatIntervalMs: 200, nodeTimeoutMs: 2_000 };
    a = await startServer({ ...shared, metricsPort: await freePort() });
    b = await startServer({ ...shared, metricsPort: await freePort() });
    // Each has heard the other: a request now waits for both.
    await eventually(async () => (await value(a, 'switchboard_cluster_messages_received_total')) > 0 && (await value(b, 'switchboard_cluster_messages_received_total')) > 0, 'the nodes to hear each other');
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  it('counts what a node publishes and what the other receives', async () => {
    const sentBefore = await value(a, 'switchboard_cluster_messages_sent_total');
    const receivedBefore = await value(b, 'switchboard_cluster_messages_received_total');
    await serverSdk(a).trigger('cluster-room', 'e', { n: 1 });
    assert.ok((await value(a, 'switchboard_cluster_messages_sent_total')) > sentBefore);
    await eventually(async () => (await value(b, 'switchboard_cluster_messages_received_total')) > receivedBefore, 'b to receive');
  });

  it('times the round trip of a request to the other nodes', async () => {
    const requests = await value(a, 'switchboard_cluster_requests_total');
    const timed = await value(a, 'switchboard_cluster_request_duration_seconds_count');
    await a.disconnect({ user: 'nobody' }); // asks every node to close the user's connections
    assert.equal(await value(a, 'switchboard_cluster_requests_total'), requests + 1);
    assert.equal(await value(a, 'switchboard_cluster_request_duration_seconds_count'), timed + 1);
    assert.equal(await value(a, 'switchboard_cluster_request_timeouts_total'), 0);
  });
});
