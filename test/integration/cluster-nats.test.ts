import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { clusterSuite } from '../contract/cluster.contract.js';
import { natsBinaryMissing, natsEnv, sharedNatsMissing, startNatsServer } from '../helpers/cluster.js';

const SHARED = 'nats://127.0.0.1:4222';

// The machine's NATS (with JetStream, for claims) for the shared cases; a nats-server of its own for the restart case.
await clusterSuite({
  name: 'nats',
  unavailable: async () => (await sharedNatsMissing()) ?? natsBinaryMissing(),
  shared: () => Promise.resolve({ env: natsEnv(SHARED), close: () => Promise.resolve() }),
  throwaway: async () => {
    const server = await startNatsServer();
    return { env: natsEnv(server.url), stop: server.stop, start: server.start };
  },
  // Claims made through a cluster live in a JetStream bucket named after its prefix: remove it from the shared server.
  cleanup: async (prefix) => {
    const nc = await connect({ servers: SHARED });
    try {
      const kvm = new Kvm(nc);
      const names: string[] = [];
      for await (const status of kvm.list()) names.push(status.bucket);
      if (names.includes(`${prefix}-claims`)) await (await kvm.open(`${prefix}-claims`)).destroy();
    } finally {
      await nc.close();
    }
  },
});
