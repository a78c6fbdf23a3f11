import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import { Counters } from '../../src/core/counters.js';
import type { HubEvent } from '../../src/core/hub-events.js';
import { createLogger } from '../../src/log.js';
import { RefusalLog } from '../../src/refusal-log.js';
import { WebhookDispatcher } from '../../src/webhooks/dispatcher.js';
import { startReceiver } from '../helpers/webhook-receiver.js';

const DELAY_MS = 50;

/**
 * A held-back leave is checked against the cluster-wide state when it is due: on another node
 * the channel or member may have come back without this node seeing a join.
 */
describe('WebhookDispatcher: held leaves and the cluster-wide state', () => {
  it('drops a held leave that is no longer true when due, and sends one that still is', async (t) => {
    const hooks = await startReceiver();
    t.after(() => hooks.close());
    const app = validateConfig({ apps: [{ id: 'a', key: 'k', secret: 's', webhooks: [{ url: hooks.url }] }] }).apps[0];
    let backElsewhere = true;
    const dispatcher = new WebhookDispatcher(
      [app],
      { batchMs: 5, leaveDelayMs: DELAY_MS, timeoutMs: 1000, retryForMs: 0, maxQueue: 100 },
      new Counters(),
      new RefusalLog(createLogger('silent'), 1000),
      () => !backElsewhere,
    );
    const vacated: HubEvent = { name: 'channel_vacated', channel: 'room' };
    dispatcher.handle('a', vacated);
    await new Promise((resolve) => setTimeout(resolve, DELAY_MS * 3));
    assert.deepEqual(hooks.delivered(), []);

    backElsewhere = false;
    dispatcher.handle('a', { name: 'member_removed', channel: 'presence-room', userId: 'u1' });
    await hooks.waitFor((e) => e.name === 'member_removed');
    assert.deepEqual(hooks.delivered(), [{ name: 'member_removed', channel: 'presence-room', user_id: 'u1' }]);
    await dispatcher.close(1000);
  });
});
