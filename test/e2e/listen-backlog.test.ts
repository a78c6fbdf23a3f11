import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { startServer } from '../helpers/server.js';

/** The accept-queue size the kernel reports for a listening port (ss's Send-Q), or undefined without ss. */
function listenQueueSize(port: number): number | undefined {
  let out: string;
  try {
    out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  } catch {
    return undefined;
  }
  const fields = out.trim().split(/\s+/);
  return Number(fields[2]);
}

describe('listen backlog', () => {
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));

  it('the listening socket gets the configured backlog (capped by somaxconn), not Node\'s 511', async (t) => {
    const wanted = Math.min(2000, somaxconn);
    if (wanted <= 511) return t.skip(`net.core.somaxconn is ${somaxconn}: no backlog above Node's default is possible here`);
    const server = await startServer({ listenBacklog: wanted });
    try {
      const size = listenQueueSize(server.port);
      if (size === undefined) return t.skip('ss (iproute2) is not installed: cannot read the accept queue size');
      assert.equal(size, wanted);
    } finally {
      await server.close();
    }
  });
});
