import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig, unknownEnvNames } from '../../src/config/load.js';
import { listSettings } from '../../src/config/settings.js';

/** A value of the setting's type that differs from its default, as env and flags spell it. */
const SAMPLES: Record<string, string> = { tlsWatch: 'false', logLevel: 'warn', logFormat: 'json', role: 'api', adapter: 'nats', slowConsumerPolicy: 'drop', nativeFormat: 'envelope', webhookQueue: 'redis', appStore: 'dynamodb', appStoreTable: 'apps_sample', adminToken: 'admin-token-0123456789', dashboardPath: '/ops', clusterRouting: 'interest', clusterShards: '1024' };
const TLS_FILES = { SWITCHBOARD_TLS_CERT: 'cert.pem', SWITCHBOARD_TLS_KEY: 'key.pem' };
/** Settings that only mean something beside others: those go along, for env and flag alike. */
const ALONGSIDE: Record<string, Record<string, string>> = {
  tlsCert: { SWITCHBOARD_TLS_KEY: 'key.pem' },
  tlsKey: { SWITCHBOARD_TLS_CERT: 'cert.pem' },
  tlsCa: TLS_FILES,
  tlsPassphrase: TLS_FILES,
  tlsRedirectPort: TLS_FILES,
  metricsTls: TLS_FILES,
  dashboardPort: { SWITCHBOARD_ADMIN_TOKEN: 'admin-token-0123456789' },
  dashboardTls: { ...TLS_FILES, SWITCHBOARD_ADMIN_TOKEN: 'admin-token-0123456789', SWITCHBOARD_DASHBOARD_PORT: '4243' },
};

describe('the settings list (config/settings.ts)', () => {
  const settings = listSettings();

  it('names every env variable and flag that the loader reads, and only those', () => {
    const env = Object.fromEntries(settings.flatMap((s) => s.env.filter((n) => n.startsWith('SWITCHBOARD_')).map((n) => [n, 'x'])));
    assert.deepEqual(unknownEnvNames(env), []);
    for (const s of settings) assert.notEqual(s.description, '', `${s.key} has a .describe() text`);
    for (const s of settings.filter((x) => x.scope === 'server')) {
      assert.ok(s.flag?.startsWith('--'), s.key);
      const raw = SAMPLES[s.key] ?? (s.isList ? '127.0.0.1' : typeof s.default === 'number' ? '4242' : typeof s.default === 'boolean' ? 'true' : s.key === 'clusterPrefix' ? 'pfx' : 'host.example');
      if (s.key === 'redisClusterNodes') continue; // host:port values, checked with the engine
      const alongside = ALONGSIDE[s.key] ?? {};
      const byEnv = loadConfig({ env: { ...alongside, [s.env[0]]: raw } }) as unknown as Record<string, unknown>;
      const byFlag = loadConfig({ argv: [`${s.flag}=${raw}`], env: alongside }) as unknown as Record<string, unknown>;
      assert.deepEqual(byEnv[s.key], byFlag[s.key], `${s.key}: env and flag agree`);
      assert.notDeepEqual(byEnv[s.key], s.default, `${s.key} was set`);
    }
  });

  it('gives the schema defaults', () => {
    const config = loadConfig({ env: {} }) as unknown as Record<string, unknown>;
    for (const s of settings.filter((x) => x.scope === 'server')) assert.deepEqual(config[s.key], s.default, s.key);
  });
});
