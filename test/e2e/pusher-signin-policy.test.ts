import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Switchboard } from '../../src/index.js';
import { connected, pusherClient, serverSdk, type PusherJs } from '../helpers/clients.js';
import { APP, startServer } from '../helpers/server.js';
import { pusherSignedIn } from '../helpers/users.js';

const TIMEOUT_MS = 1_000;
const REQUIRED = { id: 'required-app', key: 'required-key', secret: 'required-secret', signIn: 'required', signInTimeoutMs: TIMEOUT_MS } as const;
const DISABLED = { id: 'disabled-app', key: 'disabled-key', secret: 'disabled-secret', signIn: 'disabled' } as const;

type PusherJsError = { type: string; data?: { code: number; message: string } };

/** Resolves with the first pusher:error a pusher-js client reports. */
function firstError(client: PusherJs): Promise<{ code: number; message: string }> {
  return new Promise((resolve) => {
    client.connection.bind('error', (err: PusherJsError) => {
      if (err.type === 'PusherError' && err.data) resolve(err.data);
    });
  });
}

/** Resolves with the time a pusher-js client left the connected state. */
function leftConnected(client: PusherJs): Promise<number> {
  return new Promise((resolve) => {
    client.connection.bind('state_change', (s: { previous: string; current: string }) => {
      if (s.previous === 'connected') resolve(Date.now());
    });
  });
}

describe('sign-in policy per app: required within a time, or disabled (pusher-js)', () => {
  let server: Switchboard;
  const clients: PusherJs[] = [];
  const client = (app: { id: string; key: string; secret: string }, user?: Record<string, unknown>): PusherJs => {
    const c = pusherClient(server, { key: app.key, sdk: serverSdk(server, app), ...(user ? { user } : {}) });
    clients.push(c);
    return c;
  };
  before(async () => {
    server = await startServer({ apps: [{ ...APP }, REQUIRED, DISABLED] });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await server.close();
  });

  it('keeps a client that signs in in time and closes one that does not with 4009, after the timeout and not before', async () => {
    const signer = client(REQUIRED, { id: 'ann' });
    await connected(signer);
    await pusherSignedIn(signer, 'ann');
    const signerLeft = leftConnected(signer);

    const connectingAt = Date.now();
    const silent = client(REQUIRED);
    const error = firstError(silent);
    const left = leftConnected(silent);
    await connected(silent);
    assert.deepEqual(await error, { code: 4009, message: `Not signed in within ${TIMEOUT_MS} ms: this app requires pusher:signin` });
    const leftAt = await left;
    assert.ok(leftAt - connectingAt >= TIMEOUT_MS, `closed ${leftAt - connectingAt} ms after connecting`);
    // pusher-js does not reconnect after a 4000-4099 close.
    assert.notEqual(silent.connection.state, 'connected');

    // The signer connected before the silent client, so its own timeout has passed too: still there, and reachable.
    assert.equal(signer.connection.state, 'connected');
    const got = new Promise((resolve) => signer.user.bind('hello', resolve));
    await serverSdk(server, REQUIRED).sendToUser('ann', 'hello', { n: 1 });
    assert.deepEqual(await got, { n: 1 });
    assert.equal(await Promise.race([signerLeft, Promise.resolve('still connected')]), 'still connected');
  });

  it('refuses pusher:signin with pusher:error 4300 when sign-in is disabled, and keeps the connection', async () => {
    const c = client(DISABLED, { id: 'bob' });
    await connected(c);
    const signedIn = new Promise<string>((resolve) => {
      c.connection.bind('message', (m: { event: string }) => {
        if (m.event === 'pusher:signin_success') resolve('signed in');
      });
    });
    const error = firstError(c);
    c.signin();
    assert.deepEqual(await Promise.race([error, signedIn]), { code: 4300, message: 'User sign-in is not enabled for this app' });
    assert.equal(c.connection.state, 'connected');
    // pusher-js holds no user data: no pusher:signin_success came.
    assert.equal(c.user.user_data, null);
  });
});
