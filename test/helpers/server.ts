import { createServer, type ConfigInput, type Switchboard } from '../../src/index.js';

export const APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

/**
 * Starts a Switchboard on a free loopback port with the test app (client events and
 * subscription counts on, so tests can opt out per app). Close it with `await server.close()`.
 */
export async function startServer(overrides: Partial<ConfigInput> = {}): Promise<Switchboard> {
  return createServer({
    host: '127.0.0.1',
    port: 0,
    logLevel: 'silent',
    apps: [{ ...APP, enableClientMessages: true }],
    ...overrides,
  });
}
