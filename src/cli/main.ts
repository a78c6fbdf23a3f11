#!/usr/bin/env node
import { EngineStartError } from '../cluster/health.js';
import { ConfigError, appsWithDefaultSecret, loadConfig, unknownEnvNames } from '../config/load.js';
import { createLogger } from '../log.js';
import type { CommandResult } from './config-command.js';

const write = (stream: NodeJS.WriteStream) => (text: string): void => void stream.write(text);

/**
 * Subcommands: `switchboard NAME args...`. Anything else starts the server with its flags. A
 * command returns what to print and its exit code.
 */
const COMMANDS: Readonly<Record<string, (args: readonly string[]) => CommandResult | Promise<CommandResult>>> = {
  config: async (args) => (await import('./config-command.js')).configCommand(args),
  apps: async (args) => ({ code: await (await import('./apps.js')).runAppsCommand(args, process.env, write(process.stdout), write(process.stderr)) }),
  webhooks: async (args) => ({ code: await (await import('./webhooks.js')).runWebhooksCommand(args, process.env, write(process.stdout), write(process.stderr)) }),
};

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** How far past shutdownTimeoutMs the process may run before it is ended regardless. */
const SHUTDOWN_OVERRUN_MS = 3_000;

/** Help and version are asked for anywhere among the flags (`switchboard --port 1 --help`). */
async function infoAsked(argv: readonly string[]): Promise<CommandResult | undefined> {
  const help = argv.includes('--help') || argv.includes('-h');
  if (!help && !argv.includes('--version')) return undefined;
  const { helpText, version } = await import('./help.js');
  return { code: 0, stdout: help ? helpText() : `${version()}\n` };
}

async function main(argv: readonly string[]): Promise<void> {
  const command = argv[0] === undefined ? undefined : COMMANDS[argv[0]];
  const result = command ? await command(argv.slice(1)) : await infoAsked(argv);
  if (result) {
    if (result.stdout) process.stdout.write(result.stdout);
    if (result.stderr) process.stderr.write(result.stderr);
    process.exitCode = result.code;
    return;
  }
  await start(argv);
}

async function start(argv: readonly string[]): Promise<void> {
  let config;
  try {
    config = loadConfig({ argv, env: process.env });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel, config.logFormat);
  const unknown = unknownEnvNames(process.env);
  if (unknown.length > 0) log.warn({ variables: unknown }, 'these SWITCHBOARD_ variables set nothing: mistyped?');
  const defaultSecret = appsWithDefaultSecret(config);
  if (config.appStore === 'config' && defaultSecret.length > 0 && !isLoopbackHost(config.host)) {
    log.warn({ apps: defaultSecret }, 'apps signing with the default secret "app-secret" on a public interface: anyone can publish to them; set SWITCHBOARD_APP_SECRET');
  }
  // Loaded only to start: --help, --version and the config commands need none of the engines.
  const { createServer } = await import('../server.js');
  const { TlsLoadError } = await import('../transport/tls.js');
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

main(process.argv.slice(2)).catch((err: unknown) => {
  // An engine that does not answer at start is an operator's problem to fix, like a bad config: no stack.
  if (err instanceof EngineStartError) {
    process.stderr.write(`switchboard: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`switchboard: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
