import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { configCommand } from '../../src/cli/config-command.js';
import { helpText } from '../../src/cli/help.js';
import { exampleConfig } from '../../src/config/example.js';
import { ConfigError, loadConfig, validateConfig } from '../../src/config/load.js';
import { appSchema, configSchema, webhookSchema } from '../../src/config/schema.js';
import { appSettings, serverSettings, webhookSettings } from '../../src/config/settings.js';

const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The problems loading `path` gives (none: []). */
function problems(path: string): string[] {
  try {
    loadConfig({ argv: ['--config', path], env: {} });
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

const JSON_CONFIG = `{
  "port": 7001,
  "logLevel": "warn",
  "trustedProxies": ["10.0.0.0/8", "127.0.0.1"],
  "apps": [
    { "id": "a", "key": "ka", "secret": "sa", "enableClientMessages": true,
      "channelPasswords": { "room": "pw" },
      "webhooks": [ { "url": "http://127.0.0.1:9/hook", "events": ["channel_occupied"], "headers": { "X-Token": "t" } } ] },
    { "id": "b", "key": "kb", "secret": "sb", "maxConnections": 5 }
  ]
}
`;

const YAML_CONFIG = `# the same settings, in YAML
port: 7001
logLevel: warn
trustedProxies:
  - 10.0.0.0/8
  - 127.0.0.1
apps:
  - id: a
    key: ka
    secret: sa
    enableClientMessages: true
    channelPasswords:
      room: pw
    webhooks:
      - url: http://127.0.0.1:9/hook
        events: [channel_occupied]
        headers:
          X-Token: t
  - id: b
    key: kb
    secret: sb
    maxConnections: 5
`;

const TOML_CONFIG = `# the same settings, in TOML
port = 7001
logLevel = "warn"
trustedProxies = ["10.0.0.0/8", "127.0.0.1"]

[[apps]]
id = "a"
key = "ka"
secret = "sa"
enableClientMessages = true
channelPasswords = { room = "pw" }

[[apps.webhooks]]
url = "http://127.0.0.1:9/hook"
events = ["channel_occupied"]
headers = { X-Token = "t" }

[[apps]]
id = "b"
key = "kb"
secret = "sb"
maxConnections = 5
`;

describe('config files', () => {
  it('a YAML and a TOML file load to the same config as the JSON one', () => {
    const load = (path: string): unknown => loadConfig({ argv: ['--config', path], env: {} });
    const fromJson = load(file('same.json', JSON_CONFIG));
    assert.equal((fromJson as { port: number }).port, 7001);
    assert.deepEqual(load(file('same.yaml', YAML_CONFIG)), fromJson);
    assert.deepEqual(load(file('same.yml', YAML_CONFIG)), fromJson);
    assert.deepEqual(load(file('same.toml', TOML_CONFIG)), fromJson);
  });

  it('names the line of a syntax error, in each format', () => {
    // Where Node's JSON.parse names the offset (not every message of Node 20 does).
    const json = problems(file('broken.json', '{\n  "port": 7001,\n  "logLevel": "warn",\n}\n'));
    assert.match(json[0] ?? '', /broken\.json:4: /);
    const yaml = problems(file('broken.yaml', 'port: 7001\nlogLevel: warn\napps: [\n'));
    assert.match(yaml[0] ?? '', /broken\.yaml:\d+: /);
    const toml = problems(file('broken.toml', 'port = 7001\nlogLevel = "warn"\nadapter = = "redis"\n'));
    assert.match(toml[0] ?? '', /broken\.toml:3: /);
  });

  it('names the file and line of a bad value in JSON', () => {
    const found = problems(file('bad.json', '{\n  "apps": [\n    { "id": "a", "key": "k", "secret": "s",\n      "maxConnections": -1 }\n  ]\n}\n'));
    assert.match(found[0] ?? '', /bad\.json:4: apps\.0\.maxConnections: /);
  });

  it('names the file and line of a bad value in YAML, and reports every problem', () => {
    const found = problems(file('bad.yaml', 'port: 70000\nlogLevel: loud\napps:\n  - id: a\n    key: k\n    secret: s\n    apiToken: short\n'));
    assert.deepEqual(found.map((p) => p.replace(/^.*bad\.yaml:/, 'bad.yaml:').replace(/: [A-Z].*$|: must.*$/, '')), [
      'bad.yaml:1: port',
      'bad.yaml:2: logLevel',
      'bad.yaml:7: apps.0.apiToken',
    ]);
  });

  it('refuses a file of another kind, naming the kinds it reads', () => {
    assert.match(problems(file('config.ini', 'port=1'))[0] ?? '', /\.json, \.yaml, \.yml or \.toml/);
  });
});

describe('switchboard config check', () => {
  it('prints "ok" for a good file', () => {
    assert.deepEqual(configCommand(['check', file('good.toml', TOML_CONFIG)]), { code: 0, stdout: 'ok\n' });
  });

  it('prints every problem and exits 2 for a bad one', () => {
    const result = configCommand(['check', file('two-bad.json', '{"port": -1, "apps": [{"id": "a", "key": "k"}]}')]);
    assert.equal(result.code, 2);
    assert.match(result.stdout ?? '', /port: /);
    assert.match(result.stdout ?? '', /apps\.0\.secret: /);
    assert.match(result.stdout ?? '', /2 problems in /);
  });

  it('needs a file and a known subcommand', () => {
    assert.equal(configCommand(['check']).code, 2);
    assert.equal(configCommand(['frobnicate']).code, 2);
  });
});

describe('switchboard config example', () => {
  const defaults = (config: ReturnType<typeof validateConfig>): unknown => ({ ...config, apps: undefined });

  for (const format of ['yaml', 'toml', 'json'] as const) {
    it(`${format}: parses, validates, and holds every setting at its default`, () => {
      const text = exampleConfig(format);
      const parsed = (format === 'yaml' ? parseYaml(text) : format === 'toml' ? parseToml(text) : JSON.parse(text)) as Record<string, unknown>;
      const config = validateConfig(parsed);
      assert.deepEqual(defaults(config), defaults(validateConfig({})));
      // Optional settings without a default are shown commented out (JSON has no comments: left out).
      const optional = new Set([...serverSettings(), ...appSettings(), ...webhookSettings()].filter((s) => s.default === undefined).map((s) => s.key));
      const shown = (key: string, where: Record<string, unknown>): boolean => key in where || (optional.has(key) && (format === 'json' || text.includes(`# ${key}`)));
      for (const key of Object.keys(configSchema.shape)) assert.ok(shown(key, parsed), `${key} in the ${format} example`);
      const app = (parsed.apps as Array<Record<string, unknown>>)[0];
      for (const key of Object.keys(appSchema.shape)) assert.ok(shown(key, app), `${key} in the ${format} example's app`);
      const hook = (app.webhooks as Array<Record<string, unknown>>)[0];
      for (const key of Object.keys(webhookSchema.shape)) assert.ok(shown(key, hook), `${key} in the ${format} example's webhook`);
    });
  }

  it('comments each described setting with its meaning (YAML and TOML)', () => {
    const described = [...serverSettings(), ...appSettings()].filter((s) => s.description !== '');
    assert.ok(described.length > 0);
    for (const format of ['yaml', 'toml'] as const) for (const s of described) assert.ok(exampleConfig(format).includes(`# ${s.description}`), `${s.key} (${format})`);
  });
});

describe('switchboard --help', () => {
  it('lists every schema key, with its flag, environment variable and default', () => {
    const text = helpText();
    for (const s of serverSettings()) {
      assert.ok(text.includes(`  ${s.key} `), s.key);
      assert.ok(text.includes(s.flag as string) && s.env.every((e) => text.includes(e)), `${s.key}: ${s.flag} ${s.env.join(' ')}`);
    }
    for (const key of Object.keys(appSchema.shape)) assert.ok(text.includes(`  apps[].${key} `), key);
    for (const key of Object.keys(webhookSchema.shape)) assert.ok(text.includes(`  apps[].webhooks[].${key} `), key);
    assert.match(text, /port <number>\n\s+\(--port, SWITCHBOARD_PORT, PORT\)\s+default: 6001/);
    assert.match(text, /logFormat auto\|json\|pretty/);
  });
});
