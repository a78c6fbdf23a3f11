import { z } from 'zod';
import { appSchema, configSchema, webhookSchema } from './schema.js';

/**
 * Where each setting can be given: the one list of environment names and flags, derived from
 * the schema (keys, defaults, `.describe()` texts), so `--help`, the README table and the
 * loader cannot name different things.
 */
export interface SettingInfo {
  /** The config file's key (top level), or the default app's field for `scope: 'app'`. */
  readonly key: string;
  readonly scope: 'server' | 'app';
  /** Environment variables that set it, the preferred one first. */
  readonly env: readonly string[];
  /** The command-line flag (`--metrics-port`); app fields have none. */
  readonly flag: string | undefined;
  /** The value when nothing sets it; undefined for optional settings without one. */
  readonly default: unknown;
  readonly description: string;
  /** Lists are comma- or space-separated in env values and flags. */
  readonly isList: boolean;
  /** Text settings (strings, URLs, choices) keep "123" as a string. */
  readonly isText: boolean;
  /** What values it takes, for --help: an enum's values, or a kind (<number>, <text>, true|false, <list>, <map>). */
  readonly type: string;
}

export const ENV_PREFIX = 'SWITCHBOARD_';

/** SWITCHBOARD_APP_<suffix> → the default app's field. User-facing names, so listed, not derived. */
export const APP_ENV_FIELDS: Readonly<Record<string, string>> = {
  ID: 'id',
  KEY: 'key',
  SECRET: 'secret',
  CLIENT_MESSAGES: 'enableClientMessages',
  SUBSCRIPTION_COUNT: 'enableSubscriptionCount',
  MAX_CONNECTIONS: 'maxConnections',
  API_TOKEN: 'apiToken',
  JWT_SECRET: 'jwtSecret',
  AUTH_WEBHOOK_URL: 'authWebhookUrl',
  ALLOW_ANONYMOUS: 'allowAnonymous',
  CLIENT_PUBLISH: 'clientPublish',
  NATIVE_FORMAT: 'nativeFormat',
  ALLOWED_ORIGINS: 'allowedOrigins',
  CORS_ORIGINS: 'corsOrigins',
};

/** Env names read besides SWITCHBOARD_<KEY>, as platforms set them. */
const ENV_ALIASES: Readonly<Record<string, string>> = { host: 'HOST', port: 'PORT' };

/** SWITCHBOARD_<SCREAMING_SNAKE_KEY>. */
export function envName(key: string): string {
  return ENV_PREFIX + key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

/** `--kebab-key`. */
export function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** Top-level settings that env and flags can set (every one but `apps`). */
export const scalarKeys: readonly string[] = Object.keys(configSchema.shape).filter((key) => key !== 'apps');

function typeOf(inner: z.ZodType): string {
  if (inner instanceof z.ZodEnum) return (inner.options as readonly string[]).join('|');
  if (inner instanceof z.ZodNumber) return '<number>';
  if (inner instanceof z.ZodBoolean) return 'true|false';
  if (inner instanceof z.ZodArray) return '<list>';
  if (inner instanceof z.ZodRecord) return '<map>';
  return '<text>';
}

function describeField(schema: z.ZodType): { default: unknown; isList: boolean; isText: boolean; description: string; type: string } {
  let inner: z.ZodType = schema;
  let fallback: unknown;
  // Peel the wrappers (default, optional) to see what the value is.
  for (;;) {
    if (inner instanceof z.ZodDefault) {
      fallback = inner.def.defaultValue;
      inner = inner.def.innerType as z.ZodType;
    } else if (inner instanceof z.ZodOptional) inner = inner.def.innerType as z.ZodType;
    else break;
  }
  return {
    default: fallback,
    isList: inner instanceof z.ZodArray,
    isText: inner instanceof z.ZodString || inner instanceof z.ZodStringFormat || inner instanceof z.ZodEnum,
    description: schema.description ?? '',
    type: typeOf(inner),
  };
}

/** Every setting with its key, env names, flag, default and description, server settings first. */
export function listSettings(): SettingInfo[] {
  const shape = configSchema.shape as Record<string, z.ZodType>;
  const server = scalarKeys.map((key): SettingInfo => {
    const alias = ENV_ALIASES[key];
    return { key, scope: 'server', env: alias ? [envName(key), alias] : [envName(key)], flag: flagName(key), ...describeField(shape[key]) };
  });
  const appShape = appSchema.shape as Record<string, z.ZodType>;
  const app = Object.entries(APP_ENV_FIELDS).map(
    ([suffix, key]): SettingInfo => ({ key, scope: 'app', env: [`${ENV_PREFIX}APP_${suffix}`], flag: undefined, ...describeField(appShape[key]) }),
  );
  return [...server, ...app];
}

/** Top-level settings (`apps` aside): each has a flag and an environment variable. */
export function serverSettings(): SettingInfo[] {
  return listSettings().filter((s) => s.scope === 'server');
}

/** Every setting of one app (`apps[]`), the default app's SWITCHBOARD_APP_* name with those that have one. */
export function appSettings(): SettingInfo[] {
  const envOf = new Map(Object.entries(APP_ENV_FIELDS).map(([suffix, key]) => [key, `${ENV_PREFIX}APP_${suffix}`]));
  return Object.entries(appSchema.shape as Record<string, z.ZodType>).map(([key, schema]): SettingInfo => {
    const env = envOf.get(key);
    return { key, scope: 'app', env: env === undefined ? [] : [env], flag: undefined, ...describeField(schema) };
  });
}

/** Settings of one webhook target (`apps[].webhooks[]`). */
export function webhookSettings(): SettingInfo[] {
  return Object.entries(webhookSchema.shape as Record<string, z.ZodType>).map(([key, schema]): SettingInfo => ({ key, scope: 'app', env: [], flag: undefined, ...describeField(schema) }));
}
