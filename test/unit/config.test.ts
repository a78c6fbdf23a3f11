import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, appsWithDefaultSecret, loadConfig, unknownEnvNames, type LoadOptions } from '../../src/config/load.js';

let dir: string;
let fileCount = 0;

/** Writes `content` (an object as JSON, or raw text) to a fresh file in the test's tmp dir. */
function configFile(content: unknown): string {
  const path = join(dir, `config-${++fileCount}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function problemsOf(options: LoadOptions): string[] {
  try {
    loadConfig(options);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.ok(err.problems.length > 0);
    for (const p of err.problems) assert.ok(err.message.includes(p), `message lists "${p}"`);
    return err.problems;
  }
  assert.fail('expected loadConfig to throw');
}

/** Asserts that some problem matches each pattern (less the file:line: a value from a file is placed by), and that there are exactly that many. */
function assertProblems(problems: string[], patterns: RegExp[]): void {
  const unplaced = problems.map((p) => p.replace(/^\S+\.(json|yaml|yml|toml):\d+: /, ''));
  for (const re of patterns) assert.ok(problems.some((p, i) => re.test(p) || re.test(unplaced[i])), `no problem matches ${re}: ${JSON.stringify(problems)}`);
  assert.equal(problems.length, patterns.length, JSON.stringify(problems));
}

describe('loadConfig', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('defaults', () => {
    it('listens on 0.0.0.0:6001 with one app app-id/app-key/app-secret, client messages off', () => {
      const config = loadConfig({ argv: [], env: {} });
      assert.equal(config.port, 6001);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.apps.length, 1);
      const app = config.apps[0];
      assert.deepEqual({ id: app?.id, key: app?.key, secret: app?.secret }, { id: 'app-id', key: 'app-key', secret: 'app-secret' });
      assert.equal(app?.enableClientMessages, false);
      assert.equal(app?.enabled, true);
      assert.equal(app?.maxEventDataBytes, 10 * 1024);
      assert.equal(app?.maxBatchSize, 10);
      assert.equal(app?.maxEventChannels, 100);
    });
  });

  describe('environment', () => {
    it('SWITCHBOARD_APP_ID/KEY/SECRET/CLIENT_MESSAGES describe the default app', () => {
      const config = loadConfig({
        argv: [],
        env: { SWITCHBOARD_APP_ID: '123', SWITCHBOARD_APP_KEY: 'k1', SWITCHBOARD_APP_SECRET: 's1', SWITCHBOARD_APP_CLIENT_MESSAGES: 'true' },
      });
      assert.equal(config.apps.length, 1);
      const app = config.apps[0];
      assert.equal(app?.id, '123'); // kept as a string, not coerced to a number
      assert.equal(app?.key, 'k1');
      assert.equal(app?.secret, 's1');
      assert.equal(app?.enableClientMessages, true);
    });

    it('HOST and PORT set the listener', () => {
      const config = loadConfig({ argv: [], env: { HOST: '127.0.0.1', PORT: '7001' } });
      assert.equal(config.host, '127.0.0.1');
      assert.equal(config.port, 7001);
    });

    it('SWITCHBOARD_PORT wins over PORT', () => {
      assert.equal(loadConfig({ argv: [], env: { PORT: '7001', SWITCHBOARD_PORT: '7002' } }).port, 7002);
    });

    it('accepts port 0 (pick a free port)', () => {
      assert.equal(loadConfig({ argv: [], env: { PORT: '0' } }).port, 0);
    });

    it('SWITCHBOARD_TRUSTED_PROXIES is a list of addresses and CIDR ranges', () => {
      const config = loadConfig({ argv: [], env: { SWITCHBOARD_TRUSTED_PROXIES: '10.0.0.0/8, 127.0.0.1 ::1' } });
      assert.deepEqual(config.trustedProxies, ['10.0.0.0/8', '127.0.0.1', '::1']);
      assert.deepEqual(loadConfig({ argv: [], env: {} }).trustedProxies, []);
    });

    it('metrics are off by default; SWITCHBOARD_METRICS_PORT turns them on', () => {
      assert.equal(loadConfig({ argv: [], env: {} }).metricsPort, 0);
      assert.equal(loadConfig({ argv: [], env: { SWITCHBOARD_METRICS_PORT: '9601' } }).metricsPort, 9601);
    });
  });

  describe('config file', () => {
    it('--config loads several apps with their own settings', () => {
      const file = configFile({
        port: 7100,
        apps: [
          { id: 'one', key: 'key-one', secret: 'secret-one' },
          { id: 'two', key: 'key-two', secret: 'secret-two', enableClientMessages: true, maxConnections: 5 },
        ],
      });
      const config = loadConfig({ argv: ['--config', file], env: {} });
      assert.equal(config.port, 7100);
      assert.deepEqual(
        config.apps.map((a) => [a.id, a.key, a.secret, a.enableClientMessages, a.maxConnections]),
        [
          ['one', 'key-one', 'secret-one', false, 0],
          ['two', 'key-two', 'secret-two', true, 5],
        ],
      );
    });

    it('takes a numeric app id (as soketi and Sockudo examples write it) as its decimal string', () => {
      const file = configFile({ apps: [{ id: 12345, key: 'key-num', secret: 'secret-num' }] });
      assert.equal(loadConfig({ argv: ['--config', file], env: {} }).apps[0]?.id, '12345');
    });

    it('--config=file works as one argument', () => {
      const file = configFile({ port: 7101 });
      assert.equal(loadConfig({ argv: [`--config=${file}`], env: {} }).port, 7101);
    });

    it('env overrides the file app with the same id and leaves the others alone', () => {
      const file = configFile({
        apps: [
          { id: 'one', key: 'key-one', secret: 'secret-one' },
          { id: 'two', key: 'key-two', secret: 'secret-two' },
        ],
      });
      const config = loadConfig({ argv: ['--config', file], env: { SWITCHBOARD_APP_ID: 'two', SWITCHBOARD_APP_SECRET: 'from-env' } });
      assert.deepEqual(
        config.apps.map((a) => [a.id, a.key, a.secret]),
        [
          ['one', 'key-one', 'secret-one'],
          ['two', 'key-two', 'from-env'],
        ],
      );
    });

    it('env overrides a file setting', () => {
      const file = configFile({ port: 7100, host: '127.0.0.2' });
      const config = loadConfig({ argv: ['--config', file], env: { SWITCHBOARD_PORT: '7200' } });
      assert.equal(config.port, 7200);
      assert.equal(config.host, '127.0.0.2');
    });

    it('a CLI flag overrides env and file', () => {
      const file = configFile({ port: 7100 });
      const config = loadConfig({ argv: ['--config', file, '--port', '7300'], env: { SWITCHBOARD_PORT: '7200', PORT: '7201' } });
      assert.equal(config.port, 7300);
    });

    it('kebab-case flags map to camelCase settings', () => {
      assert.equal(loadConfig({ argv: ['--max-request-body-bytes', '2048'], env: {} }).maxRequestBodyBytes, 2048);
    });
  });

  describe('warnings', () => {
    it('names the SWITCHBOARD_ variables that set nothing, not the settings nor the example scripts\' client variables', () => {
      const env = { SWITCHBOARD_METRIC_PORT: '9601', SWITCHBOARD_METRICS_PORT: '9601', SWITCHBOARD_APP_SECRET: 'x', SWITCHBOARD_APP_MAX_PRESENCE: '5', SWITCHBOARD_URL: 'http://h', SWITCHBOARD_CONFIG: 'f', PATH: '/bin' };
      assert.deepEqual(unknownEnvNames(env), ['SWITCHBOARD_APP_MAX_PRESENCE', 'SWITCHBOARD_METRIC_PORT']);
    });

    it('names the apps that still sign with the default secret', () => {
      assert.deepEqual(appsWithDefaultSecret(loadConfig({ argv: [], env: { SWITCHBOARD_APP_ID: 'prod', SWITCHBOARD_APP_KEY: 'prod-key' } })), ['prod']);
      assert.deepEqual(appsWithDefaultSecret(loadConfig({ argv: [], env: { SWITCHBOARD_APP_SECRET: 'a-real-secret' } })), []);
    });
  });

  describe('problems', () => {
    it('refuses an unknown key in the file', () => {
      assertProblems(problemsOf({ argv: ['--config', configFile({ prot: 6001 })], env: {} }), [/prot/]);
    });

    it('refuses an unknown key in an app', () => {
      const file = configFile({ apps: [{ id: 'a', key: 'k', secret: 's', colour: 'red' }] });
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [/^apps\.0.*colour/]);
    });

    it('refuses webhook and auth webhook URLs holding a user or password, without echoing the password', () => {
      const file = configFile({
        apps: [{ id: 'a', key: 'k', secret: 's', authWebhookUrl: 'https://u:auth-pass@backend.example/auth', webhooks: [{ url: 'https://u:hook-pass@backend.example/hook' }] }],
      });
      const problems = problemsOf({ argv: ['--config', file], env: {} });
      assertProblems(problems, [/^apps\.0\.authWebhookUrl: must not hold a user or password/, /^apps\.0\.webhooks\.0\.url: must not hold a user or password/]);
      assert.ok(!problems.join('\n').includes('pass@'), 'a password was echoed');
    });

    it('refuses a trusted proxy that is not an address or range', () => {
      assertProblems(problemsOf({ argv: [], env: { SWITCHBOARD_TRUSTED_PROXIES: '10.0.0.0/8,proxy.internal' } }), [/^trustedProxies\.1: must be an IP address or CIDR range/]);
    });

    it('refuses a listen backlog of 0', () => {
      assertProblems(problemsOf({ argv: [], env: { SWITCHBOARD_LISTEN_BACKLOG: '0' } }), [/^listenBacklog: /]);
    });

    it('refuses port 70000', () => {
      assertProblems(problemsOf({ argv: [], env: { PORT: '70000' } }), [/^port: /]);
    });

    it('refuses port "abc"', () => {
      assertProblems(problemsOf({ argv: [], env: { SWITCHBOARD_PORT: 'abc' } }), [/^port: .*number/]);
    });

    it('refuses a negative and a fractional port', () => {
      assertProblems(problemsOf({ argv: ['--port', '-1'], env: {} }), [/^port: /]);
      assertProblems(problemsOf({ argv: ['--port', '80.5'], env: {} }), [/^port: /]);
    });

    it('refuses a duplicate app id', () => {
      const file = configFile({
        apps: [
          { id: 'a', key: 'k1', secret: 's' },
          { id: 'a', key: 'k2', secret: 's' },
        ],
      });
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [/^apps\.1\.id: duplicate app id "a"$/]);
    });

    it('refuses a duplicate app key', () => {
      const file = configFile({
        apps: [
          { id: 'a', key: 'k', secret: 's' },
          { id: 'b', key: 'k', secret: 's' },
        ],
      });
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [/^apps\.1\.key: duplicate app key "k"$/]);
    });

    it('refuses an app without a secret', () => {
      const file = configFile({ apps: [{ id: 'a', key: 'k' }] });
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [/^apps\.0\.secret: /]);
    });

    it('refuses an empty secret', () => {
      const file = configFile({ apps: [{ id: 'a', key: 'k', secret: '' }] });
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [/^apps\.0\.secret: /]);
    });

    it('refuses a file that is not JSON, naming the file', () => {
      const file = configFile('{"port": 6001,');
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [new RegExp(`^${reEscape(file)}:(1:)? `)]);
    });

    it('refuses a file that holds JSON but not an object', () => {
      const file = configFile('[1, 2]');
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [new RegExp(`^${reEscape(file)}: must hold a JSON object`)]);
    });

    it('refuses a file that cannot be read, naming the file', () => {
      const file = join(dir, 'does-not-exist.json');
      assertProblems(problemsOf({ argv: ['--config', file], env: {} }), [new RegExp(`^${reEscape(file)}: .*ENOENT`)]);
    });

    it('refuses an unknown CLI flag', () => {
      assertProblems(problemsOf({ argv: ['--prot', '6001'], env: {} }), [/^--prot: unknown option$/]);
    });

    it('refuses a flag without its value and a stray argument', () => {
      assertProblems(problemsOf({ argv: ['stray', '--port'], env: {} }), [/^stray: unexpected argument$/, /^--port: needs a value$/]);
    });

    it('lists every problem at once in one ConfigError', () => {
      const file = configFile({
        bogus: true,
        apps: [
          { id: 'a', key: 'k', secret: 's' },
          { id: 'a', key: 'k2', secret: 's' },
          { id: 'b', key: 'k', secret: 's' },
          { id: 'c', key: 'k3' },
        ],
      });
      const problems = problemsOf({ argv: ['--config', file, '--nope', '1'], env: { SWITCHBOARD_PORT: 'abc' } });
      assertProblems(problems, [
        /^--nope: unknown option$/,
        /^port: /,
        /bogus/,
        /^apps\.1\.id: duplicate app id "a"$/,
        /^apps\.2\.key: duplicate app key "k"$/,
        /^apps\.3\.secret: /,
      ]);
    });

    it('lists a bad file and a bad flag together', () => {
      const file = configFile('not json');
      assertProblems(problemsOf({ argv: ['--config', file, '--nope', '1'], env: { PORT: '70000' } }), [
        new RegExp(`^${reEscape(file)}: `),
        /^--nope: unknown option$/,
        /^port: /,
      ]);
    });
  });

  describe('the result', () => {
    it('is frozen, apps and each app included', () => {
      const config = loadConfig({ argv: [], env: {} });
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.apps));
      assert.ok(Object.isFrozen(config.apps[0]));
      assert.throws(() => {
        (config as { port: number }).port = 1;
      }, TypeError);
      assert.throws(() => {
        (config.apps[0] as { secret: string }).secret = 'x';
      }, TypeError);
      assert.throws(() => (config.apps as unknown[]).push({}), TypeError);
    });
  });
});

function reEscape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
