import { AppStoreError } from '../apps/columns.js';
import { createAppStore } from '../apps/create.js';
import { AppManager, withoutSecrets } from '../apps/manage.js';
import { noticeAppChanged } from '../cluster/notice.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';

export const APPS_USAGE = `switchboard apps <command> [options] [settings flags]

Manages the apps of the database named by appStore / appStoreUrl / appStoreTable (from the
config file, SWITCHBOARD_* variables or --app-store, --app-store-url, --app-store-table flags).
A change is announced to running servers through the cluster engine the same settings name
(adapter, redisUrl / redisClusterNodes / natsUrl, clusterPrefix), as the admin API does, so
every node applies it at once; with adapter local, or the engine unreachable, they see it
within appCacheTtlMs.

  init                          create the table (and indexes) when missing; safe to run again
  list                          every app, without secrets
  show <id>                     one app, secrets included
  add --id <id> [--key <key>] [--secret <secret>] [--set '<json>']
                                key and secret are made up when not given
  update <id> --set '<json>'    e.g. --set '{"maxConnections":100}'; null clears a setting
  enable <id> | disable <id>
  rotate-secret <id>            a new secret, printed once
  delete <id>
`;

/** Flags of the apps commands themselves; the rest are settings for loadConfig. */
const OWN_FLAGS = new Set(['id', 'key', 'secret', 'set']);

interface Parsed {
  readonly positional: string[];
  readonly own: Map<string, string>;
  readonly settings: string[];
}

function parse(argv: readonly string[]): Parsed {
  const positional: string[] = [];
  const own = new Map<string, string>();
  const settings: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/s.exec(arg);
    if (!m) {
      positional.push(arg);
      continue;
    }
    const name = m[1];
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new AppStoreError(`--${name}: needs a value`, 400);
    if (OWN_FLAGS.has(name)) own.set(name, value);
    else settings.push(`--${name}=${value}`);
  }
  return { positional, own, settings };
}

function json(text: string | undefined, what: string): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new AppStoreError(`${what} must be a JSON object`, 400);
}

/**
 * `switchboard apps …`. Returns the exit code: 0 done, 1 refused (named on stderr), 2 usage.
 * `out` and `err` are the streams, so tests can read them.
 */
export async function runAppsCommand(argv: readonly string[], env: NodeJS.ProcessEnv, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (e) {
    err(`switchboard apps: ${(e as Error).message}\n`);
    return 2;
  }
  const [command, id] = parsed.positional;
  if (!command || command === 'help' || command === '--help') {
    out(APPS_USAGE);
    return command ? 0 : 2;
  }
  let config;
  try {
    config = loadConfig({ argv: parsed.settings, env });
  } catch (e) {
    if (e instanceof ConfigError) {
      err(`switchboard apps: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const store = await createAppStore(config, createLogger('silent'));
  const apps = new AppManager(store);
  const needId = (): string => {
    if (!id) throw new AppStoreError(`${command} needs an app id`, 400);
    return id;
  };
  const print = (value: unknown): void => out(`${JSON.stringify(value, null, 2)}\n`);
  /** The change is in the database; the running nodes hear of it now rather than within the TTL. */
  const announce = async (appId: string): Promise<void> => {
    try {
      await noticeAppChanged(config, appId);
    } catch (e) {
      err(`switchboard apps: the change is saved, but the cluster engine (${config.adapter}) could not be told (${(e as Error).message}): running servers see it within appCacheTtlMs\n`);
    }
  };
  try {
    switch (command) {
      case 'init':
        await store.init();
        out(`${config.appStore} app store ready (table ${config.appStoreTable})\n`);
        break;
      case 'list':
        for (const s of await apps.list()) out(s.ok ? `${s.app.id}\tkey ${s.app.key}\t${s.app.enabled ? 'enabled' : 'disabled'}\n` : `${s.id}\tINVALID: ${s.reason}\n`);
        break;
      case 'show':
        print(await apps.get(needId()));
        break;
      case 'add': {
        const given = json(parsed.own.get('set'), '--set');
        for (const field of ['id', 'key', 'secret'] as const) {
          const value = parsed.own.get(field);
          if (value !== undefined) given[field] = value;
        }
        const created = await apps.create(given);
        await announce(created.id);
        print(created);
        break;
      }
      case 'update':
        print(withoutSecrets(await apps.update(needId(), json(parsed.own.get('set'), '--set'))));
        await announce(needId());
        break;
      case 'enable':
      case 'disable':
        await apps.setEnabled(needId(), command === 'enable');
        await announce(needId());
        out(`${id} ${command}d\n`);
        break;
      case 'rotate-secret':
        out(`${(await apps.rotateSecret(needId())).secret}\n`);
        await announce(needId());
        break;
      case 'delete':
        await apps.remove(needId());
        await announce(needId());
        out(`${id} deleted\n`);
        break;
      default:
        err(`switchboard apps: unknown command "${command}"\n\n${APPS_USAGE}`);
        return 2;
    }
    return 0;
  } catch (e) {
    if (!(e instanceof AppStoreError)) throw e;
    err(`switchboard apps ${command}: ${e.message}\n`);
    return 1;
  } finally {
    await store.close();
  }
}
