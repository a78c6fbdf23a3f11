import { randomBytes } from 'node:crypto';
import { appSchema, type AppConfig } from '../config/schema.js';
import { AppStoreError, type StoredApp } from './columns.js';
import type { AppStore } from './store.js';

/** Settings never shown in a list (the one-app view shows them). */
const SECRET_FIELDS = ['secret', 'apiToken', 'jwtSecret'] as const;

function problemsOf(error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): string {
  return error.issues.map((i) => `${i.path.map(String).join('.') || 'app'}: ${i.message}`).join('; ');
}

function asObject(input: unknown, what: string): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new AppStoreError(`${what} must be a JSON object`, 400);
  return input as Record<string, unknown>;
}

/** A new secret: 32 random bytes as hex, well past the 16 characters the logs treat as secret. */
export function newSecret(): string {
  return randomBytes(32).toString('hex');
}

/** An app without its secrets, for lists. */
export function withoutSecrets(app: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...app };
  for (const field of SECRET_FIELDS) delete shown[field];
  return shown;
}

/**
 * What the admin API and the CLI do with apps, checked by the config file's schema before any
 * write: list, create (key and secret made when not given), update, enable/disable, rotate the
 * secret, delete. The config store refuses every write (405).
 */
export class AppManager {
  constructor(private readonly store: AppStore) {}

  list(): Promise<StoredApp[]> {
    return this.store.list();
  }

  async get(id: string): Promise<AppConfig> {
    const stored = await this.store.find('id', id);
    if (!stored) throw new AppStoreError(`no app with id "${id}"`, 404);
    if (!stored.ok) throw new AppStoreError(`the row of app "${id}" fails validation (${stored.reason}): fix it in the database or delete it`, 409);
    return stored.app;
  }

  async create(input: unknown): Promise<AppConfig> {
    const given = asObject(input, 'the app');
    const parsed = appSchema.safeParse({ key: newSecret().slice(0, 20), secret: newSecret(), ...given });
    if (!parsed.success) throw new AppStoreError(problemsOf(parsed.error), 400);
    await this.store.insert(parsed.data);
    return parsed.data;
  }

  async update(id: string, patch: unknown): Promise<AppConfig> {
    const changes = asObject(patch, 'the changes');
    if ('id' in changes && changes['id'] !== id) throw new AppStoreError('an app id cannot change: create another app', 400);
    const current = await this.get(id);
    // undefined in the merge would keep a setting: null clears an optional one (apiToken, jwtSecret…).
    const merged: Record<string, unknown> = { ...current };
    for (const [field, value] of Object.entries(changes)) {
      if (value === null) delete merged[field];
      else merged[field] = value;
    }
    const parsed = appSchema.safeParse(merged);
    if (!parsed.success) throw new AppStoreError(problemsOf(parsed.error), 400);
    if (!(await this.store.replace(parsed.data))) throw new AppStoreError(`no app with id "${id}"`, 404);
    return parsed.data;
  }

  setEnabled(id: string, enabled: boolean): Promise<AppConfig> {
    return this.update(id, { enabled });
  }

  rotateSecret(id: string): Promise<AppConfig> {
    return this.update(id, { secret: newSecret() });
  }

  async remove(id: string): Promise<void> {
    if (!(await this.store.remove(id))) throw new AppStoreError(`no app with id "${id}"`, 404);
  }
}
