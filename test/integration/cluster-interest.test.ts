import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { channelHash } from '../../src/cluster/routing.js';
import type { ConfigInput, Switchboard } from '../../src/index.js';
import { RawClient, serverSdk } from '../helpers/clients.js';
import { freePort, redisNodeConfig, sharedRedisMissing } from '../helpers/cluster.js';
import { sample, scrape } from '../helpers/metrics.js';
import { APP, startServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { rawSignedIn, rawSubscribed } from '../helpers/users.js';
import { eventually } from '../helpers/wait.js';

/**
 * clusterRouting: interest on the machine's Redis, with in-process nodes: what the routing itself
 * promises (the cluster contract runs the rest in both routings).
 */

const SHARDS = 4096;
const GRACE_MS = 3000;
const IN = 'switchboard_cluster_channel_messages_in_total';
const skip = (await sharedRedisMissing()) ?? false;

let ids = 0;
function fresh(label: string): string {
  ids += 1;
  return `${label}-${ids}-${process.pid}`;
}

const shardOf = (channel: string): number => channelHash(APP.id, channel) % SHARDS;

/** Channels that fall in shards none of `taken` uses. */
function channelsInOtherShards(label: string, count: number, taken: Set<number> = new Set()): string[] {
  const out: string[] = [];
  while (out.length < count) {
    const channel = fresh(label);
    const shard = shardOf(channel);
    if (taken.has(shard)) continue;
    taken.add(shard);
    out.push(channel);
  }
  return out;
}

async function node(t: TestContext, config: Partial<ConfigInput>, extra: Partial<ConfigInput> = {}): Promise<Switchboard> {
  const server = await startServer({ ...config, clusterRouting: 'interest', clusterShards: SHARDS, clusterInterestGraceMs: GRACE_MS, metricsPort: await freePort(), ...extra });
  t.after(() => server.close());
  return server;
}

async function channelMessagesIn(server: Switchboard): Promise<number> {
  return sample((await scrape(server)).text, IN) ?? Number.NaN;
}

describe('interest routing on Redis', { skip }, () => {
  const redis = skip ? undefined : new Redis('redis://127.0.0.1:6379');
  after(() => redis?.disconnect());

  /** How many connections hold the engine subscription of a channel's shard. */
  const subscribersOfShard = async (prefix: string, channel: string): Promise<number> => {
    const reply = (await redis!.pubsub('NUMSUB', `${prefix}:shard.${shardOf(channel)}`)) as [string, number];
    return Number(reply[1]);
  };

  it('loses nothing published right after "subscribed" while the node is still joining the shard (the engine link slowed to 300 ms)', { timeout: 30_000 }, async (t) => {
    const config = redisNodeConfig('interest-join', [{ ...APP }]);
    const proxy = await TcpProxy.start(6379);
    t.after(() => proxy.close());
    const n1 = await node(t, config);
    const n2 = await node(t, config, { redisUrl: `redis://127.0.0.1:${proxy.port}` });
    const sdk = serverSdk(n1);
    // Both nodes know each other before the link slows (not needed for delivery, only for quiet logs).
    proxy.delayMs = 300;
    for (const channel of channelsInOtherShards('join', 5)) {
      const raw = await RawClient.connect(n2);
      t.after(() => raw.close());
      await rawSubscribed(raw, channel);
      await sdk.trigger(channel, 'first', { channel });
      const got = await raw.next((m) => m.event === 'first' && m.channel === channel, 5000);
      assert.equal(got.channel, channel);
    }
  });

  it('brings a node nothing of a shard it has no subscribers in (counted by the node), and a shard it has', async (t) => {
    const config = redisNodeConfig('interest-quiet', [{ ...APP }]);
    const [n1, n2] = [await node(t, config), await node(t, config)];
    const [wanted, unwanted] = channelsInOtherShards('quiet', 2);
    const raw = await RawClient.connect(n2);
    t.after(() => raw.close());
    await rawSubscribed(raw, wanted);
    const sdk = serverSdk(n1);
    const before = await channelMessagesIn(n2);
    for (let i = 0; i < 20; i++) await sdk.trigger(unwanted, 'nobody-here', { i });
    await sdk.trigger(wanted, 'marker', {});
    await raw.next((m) => m.event === 'marker' && m.channel === wanted);
    // The marker went after the 20 on the same publisher connection: had any come, it came first.
    assert.equal((await channelMessagesIn(n2)) - before, 1);
  });

  it('brings a message to a user only to the nodes where that user is signed in', { timeout: 20_000 }, async (t) => {
    const config = redisNodeConfig('interest-user', [{ ...APP }]);
    const [n1, n2, n3] = [await node(t, config), await node(t, config), await node(t, config)];
    const user = fresh('user');
    const [marker] = channelsInOtherShards('marker', 1, new Set([shardOf(`#server-to-user-${user}`)]));
    const [raw, watcher] = [await RawClient.connect(n2), await RawClient.connect(n3)];
    t.after(() => raw.close());
    t.after(() => watcher.close());
    const sdk = serverSdk(n1);
    await rawSignedIn(raw, sdk, { id: user });
    await rawSubscribed(watcher, marker);
    const before = await channelMessagesIn(n3);
    // Until one arrives: the node may still be joining the user's shard when the first goes out.
    await eventually(async () => {
      await sdk.sendToUser(user, 'hello', {});
      return raw.messages.some((m) => m.event === 'hello');
    }, 'a message to the user on node 2');
    // The marker leaves node 1 after the user's messages: had any come to node 3, it came first.
    await sdk.trigger(marker, 'marker', {});
    await watcher.next((m) => m.event === 'marker');
    assert.equal((await channelMessagesIn(n3)) - before, 1, 'node 3 got the marker and nothing else');
  });

  it('keeps a shard subscribed for clusterInterestGraceMs after its last subscriber left, then drops it', { timeout: 20_000 }, async (t) => {
    const config = redisNodeConfig('interest-grace', [{ ...APP }]);
    const n1 = await node(t, config);
    const [channel] = channelsInOtherShards('grace', 1);
    const raw = await RawClient.connect(n1);
    t.after(() => raw.close());
    await rawSubscribed(raw, channel);
    assert.equal(await subscribersOfShard(config.clusterPrefix, channel), 1);
    raw.send({ event: 'pusher:unsubscribe', data: { channel } });
    raw.send({ event: 'pusher:ping', data: {} });
    await raw.next((m) => m.event === 'pusher:pong');
    // A sixth of the grace: what a leave without grace would have dropped by now is still there.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS / 6));
    assert.equal(await subscribersOfShard(config.clusterPrefix, channel), 1, 'still subscribed within the grace');
    await eventually(async () => (await subscribersOfShard(config.clusterPrefix, channel)) === 0, 'the shard dropped after the grace', 10_000, 100);
  });

  it('does not drop a shard whose channel came back within the grace', { timeout: 20_000 }, async (t) => {
    const config = redisNodeConfig('interest-back', [{ ...APP }]);
    const n1 = await node(t, config);
    const [channel] = channelsInOtherShards('back', 1);
    const raw = await RawClient.connect(n1);
    t.after(() => raw.close());
    await rawSubscribed(raw, channel);
    raw.send({ event: 'pusher:unsubscribe', data: { channel } });
    await rawSubscribed(raw, channel);
    // Past the grace of the first leave: a timer not cancelled by the comeback would have dropped it.
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 1000));
    assert.equal(await subscribersOfShard(config.clusterPrefix, channel), 1);
  });
});
