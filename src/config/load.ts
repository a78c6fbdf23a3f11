import { readConfigFile, type ConfigFile } from './file.js';
import { configSchema, type Config, type ConfigInput } from './schema.js';
import { APP_ENV_FIELDS, ENV_PREFIX, envName, listSettings, scalarKeys } from './settings.js';

/** Start-up refused: `problems` names every one, so a user fixes them in one go. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DEFAULT_APP = { id: 'app-id', key: 'app-key', secret: 'app-secret' } as const;

const SETTINGS = new Map(listSettings().filter((s) => s.scope === 'server').map((s) => [s.key, s]));
const APP_SETTINGS = new Map(listSettings().filter((s) => s.scope === 'app').map((s) => [s.key, s]));

function parseValue(key: string, raw: string): unknown {
  const setting = SETTINGS.get(key);
  if (setting?.isList) return splitList(raw);
  return setting?.isText ? raw : coerce(raw);
}

function splitList(raw: string): string[] {
  return raw.split(/[\s,]+/).filter(Boolean);
}

/** Env values are strings; the schema wants numbers and booleans where it says so. */
function coerce(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw.trim() !== '' && /^-?\d+(\.\d+)?$/.test(raw.trim())) return Number(raw);
  return raw;
}

export interface LoadOptions {
  argv?: readonly string[];
  env?: Env;
}

/** Merges file < env < CLI flags, validates, and freezes. Throws ConfigError listing every problem. */
export function loadConfig({ argv = [], env = process.env }: LoadOptions = {}): Config {
  const problems: string[] = [];
  const flags = parseFlags(argv, problems);
  let input: Record<string, unknown> = {};

  const path = flags.get('config') ?? env[`${ENV_PREFIX}CONFIG`];
  let file: (ConfigFile & { path: string }) | undefined;
  if (path !== undefined) {
    file = { ...readConfigFile(path), path };
    problems.push(...file.problems);
    input = { ...file.input };
  }

  for (const key of scalarKeys) {
    const raw = SETTINGS.get(key)?.env.map((name) => env[name]).find((value) => value !== undefined);
    if (raw !== undefined) input[key] = parseValue(key, raw);
  }
  input.apps = mergeEnvApp(input.apps, env);

  for (const [flag, raw] of flags) {
    if (flag === 'config') continue;
    const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!scalarKeys.includes(key)) problems.push(`--${flag}: unknown option`);
    else input[key] = parseValue(key, raw);
  }

  return validateConfig(input, problems, file);
}

/** The value at `path` inside `value`, or undefined. */
function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const key of path) at = typeof at === 'object' && at !== null ? (at as Record<PropertyKey, unknown>)[key] : undefined;
  return at;
}

/**
 * Validates a config object (as createServer() receives it), filling in defaults. With the file
 * it came from, a problem with a value that the file holds names the file and its line.
 */
export function validateConfig(input: ConfigInput | Record<string, unknown>, earlier: string[] = [], file?: ConfigFile & { path: string }): Config {
  const withApps = { ...input } as Record<string, unknown>;
  if (withApps.apps === undefined || (Array.isArray(withApps.apps) && withApps.apps.length === 0)) {
    withApps.apps = [{ ...DEFAULT_APP }];
  }
  const result = configSchema.safeParse(withApps);
  const problems = [...earlier];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const where = issue.path.length ? issue.path.join('.') : 'config';
      const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
      // Only when the value is the file's (not one the environment or a flag put there).
      const line = file && valueAt(file.input, path) !== undefined && valueAt(file.input, path) === valueAt(withApps, path) ? file.lineOf(path) : undefined;
      problems.push(`${line === undefined ? '' : `${file?.path}:${line}: `}${where}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return deepFreeze(result.data);
}

/** SWITCHBOARD_* names that are not server settings: the example scripts read them on the client side. */
const CLIENT_ENV_NAMES = ['SWITCHBOARD_URL', 'SWITCHBOARD_API_TOKEN'];

/**
 * SWITCHBOARD_* variables that set nothing, most likely mistyped (SWITCHBOARD_METRIC_PORT):
 * not refused, since a shared environment may hold others of ours, but worth a warning.
 */
export function unknownEnvNames(env: Env): string[] {
  const known = new Set([
    ...scalarKeys.map(envName),
    `${ENV_PREFIX}CONFIG`,
    ...Object.keys(APP_ENV_FIELDS).map((suffix) => `${ENV_PREFIX}APP_${suffix}`),
    ...CLIENT_ENV_NAMES,
  ]);
  return Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !known.has(name))
    .sort();
}

/** Apps still signing with the secret every copy of Switchboard starts with. */
export function appsWithDefaultSecret(config: Config): string[] {
  return config.apps.filter((app) => app.secret === DEFAULT_APP.secret).map((app) => app.id);
}

/**
 * SWITCHBOARD_APP_* describe the default app. They override the file's app with the same id
 * (or its first app when no id is given), or add the app when the file has none.
 */
function mergeEnvApp(fileApps: unknown, env: Env): unknown {
  const fromEnv: Record<string, unknown> = {};
  for (const [suffix, field] of Object.entries(APP_ENV_FIELDS)) {
    const raw = env[`${ENV_PREFIX}APP_${suffix}`];
    if (raw === undefined) continue;
    if (APP_SETTINGS.get(field)?.isList) fromEnv[field] = splitList(raw);
    else fromEnv[field] = APP_SETTINGS.get(field)?.isText ? raw : coerce(raw);
  }
  if (fileApps !== undefined && !Array.isArray(fileApps)) return fileApps; // let the schema say what is wrong
  const apps = [...((fileApps as unknown[] | undefined) ?? [])];
  if (Object.keys(fromEnv).length === 0) return apps.length ? apps : undefined;
  const index = fromEnv.id === undefined ? 0 : apps.findIndex((a) => (a as { id?: unknown })?.id === fromEnv.id);
  if (index >= 0 && index < apps.length) apps[index] = { ...(apps[index] as object), ...fromEnv };
  else apps.unshift({ ...DEFAULT_APP, ...fromEnv });
  return apps;
}

function parseFlags(argv: readonly string[], problems: string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const m = /^--([a-z][a-z-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      problems.push(`${arg}: unexpected argument`);
      continue;
    }
    const value = m[2] ?? argv[++i];
    if (value === undefined) problems.push(`--${m[1]}: needs a value`);
    else flags.set(m[1], value);
  }
  return flags;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
