import { parseArgs } from 'node:util';

/**
 * `switchboard webhooks dead-letters list|replay`: an operator's view of the events given up
 * after their last retry, through a running node's API (any node: the dead letters are shared).
 */
const USAGE = `usage:
  switchboard webhooks dead-letters list   --url http://host:port --token API_TOKEN [--limit N]
  switchboard webhooks dead-letters replay --url http://host:port --token API_TOKEN [--id ID ...]
The token is the app's apiToken (or set SWITCHBOARD_APP_API_TOKEN).`;

/** Runs the command; resolves with the process exit code (2 for a usage error, 1 when the server refused). */
export async function runWebhooksCommand(argv: readonly string[], env: NodeJS.ProcessEnv, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: { url: { type: 'string' }, token: { type: 'string' }, limit: { type: 'string' }, id: { type: 'string', multiple: true } },
    });
  } catch (e) {
    err(`switchboard: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const [group, action, ...rest] = parsed.positionals;
  const token = parsed.values.token ?? env.SWITCHBOARD_APP_API_TOKEN;
  if (group !== 'dead-letters' || (action !== 'list' && action !== 'replay') || rest.length > 0 || !parsed.values.url || !token) {
    err(`${USAGE}\n`);
    return 2;
  }
  const base = parsed.values.url.replace(/\/+$/, '');
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  const request =
    action === 'list'
      ? fetch(`${base}/webhooks/dead-letters${parsed.values.limit ? `?limit=${encodeURIComponent(parsed.values.limit)}` : ''}`, { headers })
      : fetch(`${base}/webhooks/dead-letters/replay`, { method: 'POST', headers, body: JSON.stringify(parsed.values.id ? { ids: parsed.values.id } : {}) });
  let response: Response;
  try {
    response = await request;
  } catch (e) {
    err(`switchboard: cannot reach ${base}: ${(e as Error).message}\n`);
    return 1;
  }
  const body = (await response.json().catch(() => ({}))) as { error?: string; deadLetters?: unknown[]; replayed?: number };
  if (!response.ok) {
    err(`switchboard: ${response.status} ${body.error ?? response.statusText}\n`);
    return 1;
  }
  out(action === 'list' ? `${JSON.stringify(body.deadLetters, null, 2)}\n` : `replayed ${body.replayed}\n`);
  return 0;
}
