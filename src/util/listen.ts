import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Binds `server`; rejects with the bind error (a port in use) instead of emitting it. Resolves with the port bound. */
export async function listen(server: Server, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}
