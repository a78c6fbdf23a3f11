import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { LocalBus } from '../../src/cluster/local.js';
import { validateConfig } from '../../src/config/load.js';
import type { AppConfig } from '../../src/config/schema.js';
import type { App } from '../../src/core/app.js';
import type { CloseReason, Connection, ConnectionNotice, SignedInUser } from '../../src/core/connection.js';
import type { HubEvent } from '../../src/core/hub-events.js';
import { Hub } from '../../src/core/hub.js';
import type { ChannelMessage, WireEncoder } from '../../src/core/message.js';

/** A WireEncoder that counts its calls; bytes are the message as JSON. */
class CountingEncoder implements WireEncoder {
  calls = 0;
  encode(message: ChannelMessage): Buffer {
    this.calls += 1;
    return Buffer.from(JSON.stringify(message));
  }
}

/** A connection without a socket: it keeps what it is given. */
class FakeConnection implements Connection {
  readonly protocol = 'pusher';
  readonly lastActivityAt = 0;
  user: SignedInUser | undefined = undefined;
  metadata: unknown = undefined;
  readonly channels = new Set<string>();
  readonly written: Buffer[] = [];
  readonly notices: ConnectionNotice[] = [];
  readonly closes: CloseReason[] = [];

  constructor(
    readonly id: string,
    readonly app: App,
    readonly wire: WireEncoder,
  ) {}

  write(bytes: Buffer): boolean {
    this.written.push(bytes);
    return true;
  }

  notify(notice: ConnectionNotice): void {
    this.notices.push(notice);
  }

  close(reason: CloseReason): void {
    this.closes.push(reason);
  }

  /** What was written, decoded back from the test encoder's JSON. */
  get received(): ChannelMessage[] {
    return this.written.map((b) => JSON.parse(b.toString()) as ChannelMessage);
  }
}

function makeApp(overrides: Partial<AppConfig> = {}): App {
  return validateConfig({ apps: [{ id: 'app-1', key: 'key-1', secret: 'secret-1', ...overrides }] }).apps[0];
}

function user(id: string, watchlist: string[] = []): SignedInUser {
  return { id, watchlist };
}

describe('Hub (no network)', () => {
  let clock: number;
  let app: App;
  let hub: Hub;
  let wire: CountingEncoder;
  let nextId: number;
  let events: Array<{ appId: string; event: HubEvent }>;

  const connect = (target: App = app, encoder: WireEncoder = wire): FakeConnection => {
    const conn = new FakeConnection(`1.${++nextId}`, target, encoder);
    assert.equal(hub.addConnection(conn), true);
    return conn;
  };

  const setUp = async (overrides: Partial<AppConfig> = {}): Promise<void> => {
    await hub?.close();
    clock = 1_000_000;
    app = makeApp(overrides);
    events = [];
    hub = new Hub(new LocalBus(), (id) => (id === app.id ? app : undefined), () => clock, (appId, event) => events.push({ appId, event }));
    await hub.start();
  };

  beforeEach(async () => {
    nextId = 0;
    wire = new CountingEncoder();
    await setUp();
  });
  afterEach(() => hub.close());

  describe('broadcast', () => {
    it('encodes once per encoder and writes the same buffer to 100 connections', () => {
      const conns = Array.from({ length: 100 }, () => connect());
      for (const c of conns) assert.deepEqual(hub.subscribe(c, 'news'), { ok: true });
      assert.equal(wire.calls, 0);
      hub.publish(app, { kind: 'event', channel: 'news', event: 'update', data: '{"n":1}' });
      assert.equal(wire.calls, 1);
      const first = conns[0]?.written[0];
      assert.ok(first);
      for (const c of conns) {
        assert.equal(c.written.length, 1);
        assert.equal(c.written[0], first, 'the very same Buffer object');
      }
      assert.deepEqual(conns[0]?.received[0], { kind: 'event', channel: 'news', event: 'update', data: '{"n":1}' });
    });

    it('encodes once for each distinct encoder when kinds of connection are mixed', () => {
      const other = new CountingEncoder();
      const conns = Array.from({ length: 50 }, (_, i) => connect(app, i % 2 ? wire : other));
      for (const c of conns) hub.subscribe(c, 'news');
      hub.publish(app, { kind: 'event', channel: 'news', event: 'update', data: 'x' });
      assert.equal(wire.calls, 1);
      assert.equal(other.calls, 1);
      for (const c of conns) assert.equal(c.written.length, 1);
    });

    it('skips the connection named by exceptSocketId', () => {
      const [a, b, c] = [connect(), connect(), connect()];
      for (const conn of [a, b, c]) hub.subscribe(conn, 'news');
      hub.deliver(app.id, { kind: 'event', channel: 'news', event: 'e', data: 'd', exceptSocketId: b.id });
      assert.equal(a.written.length, 1);
      assert.equal(b.written.length, 0);
      assert.equal(c.written.length, 1);
    });

    it('reaches only subscribers of that channel, and none of another app', () => {
      const otherApp = makeApp({ id: 'app-2', key: 'key-2' });
      const a = connect();
      const b = connect();
      const foreign = connect(otherApp);
      hub.subscribe(a, 'news');
      hub.subscribe(b, 'sport');
      hub.subscribe(foreign, 'news');
      hub.publish(app, { kind: 'event', channel: 'news', event: 'e', data: 'd' });
      assert.equal(a.written.length, 1);
      assert.equal(b.written.length, 0);
      assert.equal(foreign.written.length, 0);
    });

    it('delivers to nobody (and encodes nothing) on an empty channel', () => {
      hub.deliver(app.id, { kind: 'event', channel: 'nobody-here', event: 'e', data: 'd' });
      assert.equal(wire.calls, 0);
    });
  });

  describe('presence', () => {
    const member = (userId: string, info: unknown = { name: userId }) => ({ userId, info });

    it('refuses a presence subscription without a member', () => {
      assert.deepEqual(hub.subscribe(connect(), 'presence-room'), { ok: false, error: 'forbidden' });
    });

    it("hands another node a member whose id holds the key separator whole, and drops it whole when this node goes", async () => {
      const id = 'a\u0000b';
      hub.subscribe(connect(), 'presence-room', member(id));
      const other = new Hub(new LocalBus(), (appId) => (appId === app.id ? app : undefined), () => clock, () => undefined);
      await other.start();
      try {
        other.applyRemote(hub.nodeId, hub.ownedState(), true); // what a snapshot carries
        assert.deepEqual(other.presenceUserIds(app.id, 'presence-room'), [id]);
        other.dropNode(hub.nodeId, false);
        assert.deepEqual(other.presenceUserIds(app.id, 'presence-room'), []);
      } finally {
        await other.close();
      }
    });

    it('announces a user on the first socket only and removes them on the last', () => {
      const watcher = connect();
      hub.subscribe(watcher, 'presence-room', member('watcher'));
      const tab1 = connect();
      const tab2 = connect();

      const joined = hub.subscribe(tab1, 'presence-room', member('u1'));
      assert.ok(joined.ok);
      assert.deepEqual([...(joined.members ?? new Map()).keys()], ['watcher', 'u1']);
      assert.deepEqual(watcher.received, [{ kind: 'member_added', channel: 'presence-room', userId: 'u1', userInfo: { name: 'u1' }, exceptSocketId: tab1.id }]);
      assert.equal(tab1.written.length, 0, 'the joiner is not told about itself');

      hub.subscribe(tab2, 'presence-room', member('u1'));
      assert.equal(watcher.written.length, 1, 'a second socket of u1 is not a new member');
      assert.equal(hub.channelInfo(app.id, 'presence-room').userCount, 2);
      assert.equal(hub.channelInfo(app.id, 'presence-room').subscriptionCount, 3);

      hub.unsubscribe(tab1, 'presence-room');
      assert.equal(watcher.written.length, 1, 'u1 still has a socket in the channel');
      assert.deepEqual(hub.presenceUserIds(app.id, 'presence-room'), ['watcher', 'u1']);

      hub.unsubscribe(tab2, 'presence-room');
      assert.deepEqual(watcher.received[1], { kind: 'member_removed', channel: 'presence-room', userId: 'u1' });
      assert.deepEqual(hub.presenceUserIds(app.id, 'presence-room'), ['watcher']);
      assert.equal(hub.channelInfo(app.id, 'presence-room').userCount, 1);
    });

    it('refuses a new member past maxPresenceMembers but lets a known user add a socket', async () => {
      await setUp({ maxPresenceMembers: 2 });
      hub.subscribe(connect(), 'presence-room', member('u1'));
      hub.subscribe(connect(), 'presence-room', member('u2'));
      assert.deepEqual(hub.subscribe(connect(), 'presence-room', member('u3')), { ok: false, error: 'presence_full' });
      const again = connect();
      assert.equal(hub.subscribe(again, 'presence-room', member('u1')).ok, true);
      assert.ok(again.channels.has('presence-room'));
      assert.equal(hub.channelInfo(app.id, 'presence-room').userCount, 2);
    });
  });

  describe('#server-to-user channels', () => {
    it('let only the signed-in user with that id subscribe', () => {
      const owner = connect();
      hub.signIn(owner, user('42'));
      const someoneElse = connect();
      hub.signIn(someoneElse, user('43'));
      const anonymous = connect();

      assert.deepEqual(hub.subscribe(owner, '#server-to-user-42'), { ok: true });
      assert.deepEqual(hub.subscribe(someoneElse, '#server-to-user-42'), { ok: false, error: 'forbidden' });
      assert.deepEqual(hub.subscribe(anonymous, '#server-to-user-42'), { ok: false, error: 'forbidden' });

      hub.publish(app, { kind: 'event', channel: '#server-to-user-42', event: 'hello', data: 'd' });
      assert.equal(owner.written.length, 1);
      assert.equal(someoneElse.written.length, 0);
      assert.equal(anonymous.written.length, 0);
    });
  });

  describe('removeConnection', () => {
    it('leaves every channel, removes emptied channels and the user, and tells presence members', () => {
      const stay = connect();
      hub.subscribe(stay, 'presence-room', { userId: 'stay', info: {} });
      const leaving = connect();
      hub.signIn(leaving, user('gone'));
      hub.subscribe(leaving, 'presence-room', { userId: 'gone', info: {} });
      hub.subscribe(leaving, 'solo');
      hub.subscribe(leaving, '#server-to-user-gone');
      assert.equal(hub.channelInfo(app.id, 'solo').occupied, true);
      assert.equal(hub.userConnections(app.id, 'gone').size, 1);

      hub.removeConnection(leaving);

      assert.equal(hub.size, 1);
      assert.equal(hub.connection(app.id, leaving.id), undefined);
      assert.equal(leaving.channels.size, 0);
      assert.equal(hub.channelInfo(app.id, 'solo').occupied, false);
      assert.equal(hub.channelInfo(app.id, '#server-to-user-gone').occupied, false);
      assert.deepEqual([...hub.channels(app.id).keys()], ['presence-room']);
      assert.equal(hub.userConnections(app.id, 'gone').size, 0);
      assert.deepEqual(hub.presenceUserIds(app.id, 'presence-room'), ['stay']);
      assert.deepEqual(stay.received.at(-1), { kind: 'member_removed', channel: 'presence-room', userId: 'gone' });
    });

    it('drops the connection from the watch index and tells watchers the user went offline', () => {
      const watcher = connect();
      hub.signIn(watcher, user('w', ['target']));
      assert.deepEqual(watcher.notices, [{ kind: 'watchlist', online: [], offline: ['target'] }]);
      const target = connect();
      hub.signIn(target, user('target'));
      assert.deepEqual(watcher.notices[1], { kind: 'watchlist', online: ['target'], offline: [] });
      hub.removeConnection(target);
      assert.deepEqual(watcher.notices[2], { kind: 'watchlist', online: [], offline: ['target'] });

      hub.removeConnection(watcher);
      const targetAgain = connect();
      hub.signIn(targetAgain, user('target'));
      assert.equal(watcher.notices.length, 3, 'a removed watcher hears nothing more');
    });

    it('keeps a user online while another of their sockets remains', () => {
      const watcher = connect();
      hub.signIn(watcher, user('w', ['u']));
      const tab1 = connect();
      const tab2 = connect();
      hub.signIn(tab1, user('u'));
      hub.signIn(tab2, user('u'));
      assert.equal(watcher.notices.length, 2, 'initial state + online once');
      hub.removeConnection(tab1);
      assert.equal(watcher.notices.length, 2);
      assert.equal(hub.userConnections(app.id, 'u').size, 1);
      hub.removeConnection(tab2);
      assert.deepEqual(watcher.notices[2], { kind: 'watchlist', online: [], offline: ['u'] });
    });

    it('is harmless when called twice', () => {
      const a = connect();
      hub.subscribe(a, 'x');
      hub.removeConnection(a);
      hub.removeConnection(a);
      assert.equal(hub.size, 0);
      assert.equal(hub.connectionCountOf(app.id), 0);
    });

    it('a channel disappears when its last subscriber unsubscribes', () => {
      const a = connect();
      const b = connect();
      hub.subscribe(a, 'room');
      hub.subscribe(b, 'room');
      hub.unsubscribe(a, 'room');
      assert.equal(hub.channelInfo(app.id, 'room').occupied, true);
      hub.unsubscribe(b, 'room');
      assert.equal(hub.channelInfo(app.id, 'room').occupied, false);
      assert.equal(hub.channels(app.id).size, 0);
    });
  });

  describe('terminateUser', () => {
    it('closes every socket of that user with reason terminated and no other', async () => {
      const a = connect();
      const b = connect();
      const other = connect();
      hub.signIn(a, user('u'));
      hub.signIn(b, user('u'));
      hub.signIn(other, user('v'));
      assert.equal(await hub.terminateUser(app.id, 'u'), 2);
      assert.deepEqual(a.closes, ['terminated']);
      assert.deepEqual(b.closes, ['terminated']);
      assert.deepEqual(other.closes, []);
      assert.equal(await hub.terminateUser(app.id, 'nobody'), 0);
    });
  });

  describe('connection quota', () => {
    it('refuses addConnection past the app maxConnections, and accepts again after a removal', async () => {
      await setUp({ maxConnections: 2 });
      const a = connect();
      connect();
      const refused = new FakeConnection('9.9', app, wire);
      assert.equal(hub.addConnection(refused), false);
      assert.equal(hub.size, 2);
      assert.equal(hub.connection(app.id, '9.9'), undefined);
      hub.removeConnection(a);
      assert.equal(hub.addConnection(refused), true);
      assert.equal(hub.connectionCountOf(app.id), 2);
    });

    it('counts the quota per app', async () => {
      await setUp({ maxConnections: 1 });
      connect();
      const otherApp = makeApp({ id: 'app-2', key: 'key-2', maxConnections: 1 });
      assert.equal(hub.addConnection(new FakeConnection('2.1', otherApp, wire)), true);
      assert.equal(hub.addConnection(new FakeConnection('2.2', otherApp, wire)), false);
      assert.equal(hub.size, 2);
    });

    it('0 means unlimited', () => {
      for (let i = 0; i < 50; i++) connect();
      assert.equal(hub.size, 50);
    });
  });

  describe('cache channels', () => {
    it('report one cache_miss per channel, not one per subscriber, until the cache is filled', () => {
      const misses = (): number => events.filter((e) => e.event.name === 'cache_miss').length;
      hub.subscribe(connect(), 'cache-empty');
      hub.subscribe(connect(), 'cache-empty');
      assert.equal(misses(), 1);
      hub.publish(app, { kind: 'event', channel: 'cache-empty', event: 'e', data: '1' });
      clock += 30 * 60 * 1000 + 1; // the event expires: the channel misses again
      hub.subscribe(connect(), 'cache-empty');
      assert.equal(misses(), 2);
    });

    it('remember at most 10,000 reported misses per app, however many channel names clients try', () => {
      const misses = (): number => events.filter((e) => e.event.name === 'cache_miss').length;
      const conn = connect();
      for (let i = 0; i < 10_050; i++) {
        hub.subscribe(conn, `cache-try-${i}`);
        hub.unsubscribe(conn, `cache-try-${i}`);
      }
      assert.equal(misses(), 10_050);
      const tracked = (hub as unknown as { apps: Map<string, { cacheMissReported: Map<string, number> }> }).apps.get(app.id)?.cacheMissReported;
      assert.equal(tracked?.size, 10_000);
      // The newest names are still throttled; the oldest were let go first.
      hub.subscribe(conn, 'cache-try-10049');
      assert.equal(misses(), 10_050);
      hub.subscribe(conn, 'cache-try-0');
      assert.equal(misses(), 10_051);
    });

    it('keep the last server event for cacheTtlSeconds on the injected clock', async () => {
      await setUp({ cacheTtlSeconds: 10 });
      hub.publish(app, { kind: 'event', channel: 'cache-prices', event: 'tick', data: '1' });
      hub.publish(app, { kind: 'event', channel: 'cache-prices', event: 'tick', data: '2' });

      const early = hub.subscribe(connect(), 'cache-prices');
      assert.ok(early.ok);
      assert.deepEqual(early.cached, { kind: 'event', channel: 'cache-prices', event: 'tick', data: '2' });
      assert.equal(hub.channelInfo(app.id, 'cache-prices').cache?.ttlSeconds, 10);

      clock += 9_500;
      assert.equal(hub.channelInfo(app.id, 'cache-prices').cache?.ttlSeconds, 1);
      assert.ok((hub.subscribe(connect(), 'cache-prices') as { cached?: unknown }).cached);

      clock += 500;
      assert.equal(hub.channelInfo(app.id, 'cache-prices').cache, undefined);
      const late = hub.subscribe(connect(), 'cache-prices');
      assert.ok(late.ok);
      assert.equal(late.cached, null, 'a miss after expiry');
    });

    it('give null on a miss and nothing for non-cache channels', () => {
      const conn = connect();
      const miss = hub.subscribe(conn, 'cache-empty');
      assert.ok(miss.ok);
      assert.equal(miss.cached, null);
      assert.deepEqual(hub.subscribe(conn, 'plain'), { ok: true });
    });

    it('do not keep client events', () => {
      hub.deliver(app.id, { kind: 'event', channel: 'private-cache-chat', event: 'client-x', data: '{}', fromClient: true });
      assert.equal(hub.channelInfo(app.id, 'private-cache-chat').cache, undefined);
    });

    it('sweepCaches drops expired entries', async () => {
      await setUp({ cacheTtlSeconds: 1 });
      hub.publish(app, { kind: 'event', channel: 'cache-a', event: 'e', data: 'd' });
      clock += 1_000;
      hub.sweepCaches();
      clock -= 1_000; // even back in time, the swept entry is gone
      assert.equal(hub.channelInfo(app.id, 'cache-a').cache, undefined);
    });
  });

  describe('channel listings', () => {
    it('channels(prefix) lists occupied channels with counts', () => {
      const a = connect();
      const b = connect();
      hub.subscribe(a, 'presence-room', { userId: 'u1', info: {} });
      hub.subscribe(b, 'presence-room', { userId: 'u1', info: {} });
      hub.subscribe(a, 'private-orders');
      hub.subscribe(a, 'public-1');
      hub.subscribe(b, 'public-1');

      assert.deepEqual([...hub.channels(app.id).keys()].sort(), ['presence-room', 'private-orders', 'public-1']);
      const presence = hub.channels(app.id, 'presence-');
      assert.deepEqual([...presence.keys()], ['presence-room']);
      assert.equal(presence.get('presence-room')?.userCount, 1);
      assert.equal(presence.get('presence-room')?.subscriptionCount, 2);
      const pub = hub.channels(app.id, 'public-').get('public-1');
      assert.equal(pub?.subscriptionCount, 2);
      assert.equal(pub?.userCount, undefined);
      assert.equal(hub.channels(app.id, 'nothing-').size, 0);
      assert.equal(hub.channels('no-such-app').size, 0);
    });

    it('channelInfo reports occupancy and counts, with user_count 0 for an empty presence channel', () => {
      const a = connect();
      hub.subscribe(a, 'private-x');
      assert.deepEqual(hub.channelInfo(app.id, 'private-x'), { occupied: true, subscriptionCount: 1, userCount: undefined, cache: undefined });
      assert.deepEqual(hub.channelInfo(app.id, 'private-y'), { occupied: false, subscriptionCount: 0, userCount: undefined, cache: undefined });
      assert.deepEqual(hub.channelInfo(app.id, 'presence-empty'), { occupied: false, subscriptionCount: 0, userCount: 0, cache: undefined });
    });

    it('subscribing twice to the same channel counts once', () => {
      const a = connect();
      hub.subscribe(a, 'room');
      assert.deepEqual(hub.subscribe(a, 'room'), { ok: true });
      assert.equal(hub.channelInfo(app.id, 'room').subscriptionCount, 1);
    });
  });

  describe('cluster commands', () => {
    it('answers a command of a kind it does not know (a newer node in a rolling upgrade) with {} and touches no connection', () => {
      const a = connect();
      const fromNewerNode = JSON.parse('{"kind":"drain-later","appId":"app-1","target":{"socketId":"1.1"}}') as Parameters<Hub['execute']>[0];
      assert.deepEqual(hub.execute(fromNewerNode), {});
      assert.deepEqual(a.closes, []);
      assert.equal(a.metadata, undefined);
    });
  });
});
