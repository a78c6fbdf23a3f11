import type { z } from 'zod';
import { APP_ENV_FIELDS, envName } from './load.js';
import { appSchema, configSchema, webhookSchema } from './schema.js';

/** One setting as --help and `config example` show it, read from the schema so they cannot drift from it. */
export interface SettingInfo {
  readonly key: string;
  /** --kebab-case, for top-level settings. */
  readonly flag: string | undefined;
  readonly env: readonly string[];
  /** undefined: none (the setting is optional). */
  readonly default: unknown;
  /** What values it takes: an enum's values, or a kind (<number>, <text>, true|false, <list>, <map>). */
  readonly type: string;
  readonly description: string;
}

type AnySchema = z.ZodType & { def: { type: string; innerType?: AnySchema; defaultValue?: unknown; entries?: Record<string, string> } };

/** The schema under its default/optional wrappers, with the description and default found on the way. */
function unwrap(schema: AnySchema): { core: AnySchema; description: string | undefined; default: unknown } {
  let core = schema;
  let description = schema.description;
  let fallback: unknown;
  while (core.def.type === 'default' || core.def.type === 'optional') {
    if (core.def.type === 'default') fallback = core.def.defaultValue;
    core = core.def.innerType as AnySchema;
    description ??= core.description;
  }
  return { core, description, default: fallback };
}

function typeOf(core: AnySchema): string {
  switch (core.def.type) {
    case 'enum':
      return Object.values(core.def.entries ?? {}).join('|');
    case 'number':
      return '<number>';
    case 'boolean':
      return 'true|false';
    case 'array':
      return '<list>';
    case 'record':
      return '<map>';
    default:
      return '<text>';
  }
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Env names of the default app's settings: SWITCHBOARD_APP_<suffix>. */
const APP_ENV: ReadonlyMap<string, string> = new Map(Object.entries(APP_ENV_FIELDS).map(([suffix, field]) => [field, `SWITCHBOARD_APP_${suffix}`]));

function describeShape(shape: Record<string, z.ZodType>, info: (key: string) => Pick<SettingInfo, 'flag' | 'env'>): SettingInfo[] {
  return Object.entries(shape).map(([key, schema]) => {
    const { core, description, default: fallback } = unwrap(schema as AnySchema);
    return { key, ...info(key), default: fallback, type: typeOf(core), description: description ?? '' };
  });
}

/** Top-level settings, `apps` excepted: each has a flag and an environment variable. */
export function serverSettings(): SettingInfo[] {
  const { apps: _apps, ...shape } = configSchema.shape;
  return describeShape(shape, (key) => ({
    flag: `--${kebab(key)}`,
    env: key === 'host' ? [envName(key), 'HOST'] : key === 'port' ? [envName(key), 'PORT'] : [envName(key)],
  }));
}

/** Settings of one app (`apps[]`); the default app's also come from SWITCHBOARD_APP_*. */
export function appSettings(): SettingInfo[] {
  return describeShape(appSchema.shape, (key) => ({ flag: undefined, env: APP_ENV.has(key) ? [APP_ENV.get(key) as string] : [] }));
}

/** Settings of one webhook target (`apps[].webhooks[]`). */
export function webhookSettings(): SettingInfo[] {
  return describeShape(webhookSchema.shape, () => ({ flag: undefined, env: [] }));
}
