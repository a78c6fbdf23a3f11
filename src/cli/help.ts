import { readFileSync } from 'node:fs';
import { appSettings, serverSettings, webhookSettings, type SettingInfo } from '../config/settings.js';

/** The version in package.json (dist/src/cli/ → the package root, installed or not). */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const shown = (value: unknown): string => (value === undefined ? 'none' : typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value));

function block(settings: readonly SettingInfo[], name: (s: SettingInfo) => string): string {
  return settings
    .map((s) => {
      const where = [s.flag, ...s.env].filter(Boolean).join(', ');
      const head = `  ${name(s)} ${s.type}`;
      const meta = [where && `(${where})`, `default: ${shown(s.default)}`].filter(Boolean).join('  ');
      return `${head}\n      ${meta}${s.description ? `\n      ${s.description}` : ''}`;
    })
    .join('\n');
}

/** `switchboard --help`: the commands, then every setting from the schema with its flag, env variable, default and meaning. */
export function helpText(): string {
  return `Switchboard ${version()}: real-time messaging server (Pusher protocol 7, a native WebSocket protocol and HTTP API).

Usage:
  switchboard [--setting value ...]        start the server
  switchboard config check FILE            validate a config file: print every problem (exit 2), or "ok"
  switchboard config example [--format yaml|toml|json]
                                           print a complete example config, every setting at its default, commented
  switchboard --help | -h                  this text
  switchboard --version                    the version

Settings come from, later winning: defaults < config file < environment < flags.
  --config FILE (SWITCHBOARD_CONFIG)  a .json, .yaml/.yml or .toml file holding these settings and "apps"
Flags take a value (--port 6001 or --port=6001; booleans --flag true); lists are comma- or
space-separated in flags and the environment.

Server settings:
${block(serverSettings(), (s) => s.key)}

App settings (each entry of "apps" in the config file; the first app's also from SWITCHBOARD_APP_*):
${block(appSettings(), (s) => `apps[].${s.key}`)}

Webhook targets (each entry of an app's "webhooks"):
${block(webhookSettings(), (s) => `apps[].webhooks[].${s.key}`)}
`;
}
