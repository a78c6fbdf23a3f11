import type { AppConfig } from '../config/schema.js';

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * An application as the hub sees it: identity, credentials and the per-app limits that every
 * front-end enforces. Derived from the config schema (config/schema.ts documents each field),
 * read-only: config/ validates and freezes it at start-up.
 */
export type App = DeepReadonly<AppConfig>;

export type WebhookTarget = App['webhooks'][number];
