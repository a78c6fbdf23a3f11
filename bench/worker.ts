// Entry point of a forked client worker: one ClientGroup driven over IPC.
// Separate processes (not worker_threads) because the open-file limit is per
// process, and so each worker gets its own event loop and core.

import { ClientGroup } from './client-group.js';
import type { RpcRequest, RpcResponse } from './rpc.js';

const group = new ClientGroup();

function reply(msg: RpcResponse): void {
  process.send?.(msg);
}

async function handle(req: RpcRequest): Promise<unknown> {
  switch (req.method) {
    case 'open':
      return group.open(req.params);
    case 'stats':
      return group.stats();
    case 'reset':
      return group.reset();
    case 'churn':
      return group.churn(req.params);
    case 'closeAll':
      return group.closeAll();
  }
}

process.on('message', (req: RpcRequest) => {
  handle(req).then(
    (result) => reply({ id: req.id, result }),
    (err: unknown) => reply({ id: req.id, error: err instanceof Error ? err.message : String(err) }),
  );
});

// The parent owns our lifetime: if it goes away, so do we.
process.on('disconnect', () => process.exit(0));
