#!/usr/bin/env node
import { EngineStartError } from '../cluster/health.js';
import { ConfigError, appsWithDefaultSecret, loadConfig, unknownEnvNames } from '../config/load.js';
import { createLogger } from '../log.js';
import { createServer } from '../server.js';
import { runWebhooksCommand } from './webhooks.js';
import { TlsLoadError } from '../transport/tls.js';
import { runAppsCommand } from './apps.js';

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** How far past shutdownTimeoutMs the process may run before it is ended regardless. */
const SHUTDOWN_OVERRUN_MS = 3_000;

async function main(): Promise<void> {
  if (process.argv[2] === 'webhooks') {
    process.exitCode = await runWebhooksCommand(process.argv.slice(3), process.env, (t) => process.stdout.write(t), (t) => process.stderr.write(t));
    return;
  }
  if (process.argv[2] === 'apps') {
    const write = (stream: NodeJS.WriteStream) => (text: string) => void stream.write(text);
    process.exitCode = await runAppsCommand(process.argv.slice(3), process.env, write(process.stdout), write(process.stderr));
    return;
  }
  let config;
  try {
    config = loadConfig({ argv: process.argv.slice(2), env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const unknown = unknownEnvNames(process.env);
  if (unknown.length > 0) log.warn({ variables: unknown }, 'these SWITCHBOARD_ variables set nothing: mistyped?');
  const defaultSecret = appsWithDefaultSecret(config);
  if (config.appStore === 'config' && defaultSecret.length > 0 && !isLoopbackHost(config.host)) {
    log.warn({ apps: defaultSecret }, 'apps signing with the default secret "app-secret" on a public interface: anyone can publish to them; set SWITCHBOARD_APP_SECRET');
  }
  const server = await createServer(config, { log }).catch((err: unknown) => {
    // A certificate or key that cannot be read or used is a configuration problem, like a bad setting.
    if (!(err instanceof TlsLoadError)) throw err;
    process.stderr.write(`switchboard: ${err.message}\n`);
    process.exit(2);
  });
  const apps =
    config.appStore === 'config' ? config.apps.map((a) => `${a.id} (key ${a.key})`).join(', ') : `those of the ${config.appStore} app store (table ${config.appStoreTable})`;
  const over = config.tlsCert ? 'WebSocket + HTTP over TLS' : 'WebSocket + HTTP';
  log.info(`Switchboard listening on ${config.host}:${server.port} (${over}), serving apps: ${apps}`);
  if (server.redirectPort !== undefined) log.info(`Plain HTTP on ${config.host}:${server.redirectPort} redirects to HTTPS`);
  // certbot's and cert-manager's renewals: `kill -HUP` (or a file change) brings the new certificate in.
  if (config.tlsCert) process.on('SIGHUP', () => server.reloadTls());
  if (server.metricsPort !== undefined) log.info(`Prometheus metrics on ${config.metricsHost || config.host}:${server.metricsPort}/metrics`);

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      // An operator asking twice wants out now (as with most servers).
      log.warn({ signal }, 'second signal: exiting without finishing the drain');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'draining');
    // close() keeps to shutdownTimeoutMs (plus a short leave of the cluster); should anything
    // still hang (an engine that stopped answering mid-goodbye), the process ends anyway.
    setTimeout(() => {
      log.error({ afterMs: config.shutdownTimeoutMs + SHUTDOWN_OVERRUN_MS }, 'shutdown overran its deadline: exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs + SHUTDOWN_OVERRUN_MS).unref();
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  // An engine that does not answer at start is an operator's problem to fix, like a bad config: no stack.
  if (err instanceof EngineStartError) {
    process.stderr.write(`switchboard: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`switchboard: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
