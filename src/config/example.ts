import { appSettings, serverSettings, webhookSettings, type SettingInfo } from './settings.js';
import type { ConfigFormat } from './file.js';

/** The example app: placeholders an operator must replace, and nothing that fails validation. */
const EXAMPLE_APP: Readonly<Record<string, unknown>> = { id: 'my-app', key: 'my-app-key', secret: 'change-me-to-a-long-random-secret' };
const EXAMPLE_WEBHOOK: Readonly<Record<string, unknown>> = { url: 'https://backend.example/pusher/webhooks', events: ['channel_occupied', 'channel_vacated'] };

interface Entry {
  readonly setting: SettingInfo;
  /** undefined: shown commented out (optional, with no default). */
  readonly value: unknown;
}

const entries = (settings: SettingInfo[], example: Readonly<Record<string, unknown>> = {}): Entry[] =>
  settings.filter((s) => s.key !== 'webhooks').map((setting) => ({ setting, value: example[setting.key] ?? setting.default }));

/** A description as comment lines, with where else the setting can be given. */
function comment(s: SettingInfo, indent: string, mark: string): string[] {
  const also = [s.flag, ...s.env].filter(Boolean).join(', ');
  const lines = [s.description, also && `(${also})`].filter(Boolean);
  return lines.map((line) => `${indent}${mark} ${line}`);
}

/**
 * A complete config file: every setting at its default, each with its meaning as a comment, and
 * one app. JSON has no comments, so the JSON example holds the values only. Values are written
 * as JSON, which is also valid YAML (flow style) and TOML (strings, numbers, arrays, inline tables).
 */
export function exampleConfig(format: ConfigFormat): string {
  const server = entries(serverSettings());
  const app = entries(appSettings(), EXAMPLE_APP);
  const webhook = entries(webhookSettings(), EXAMPLE_WEBHOOK);
  switch (format) {
    case 'json': {
      const values = (list: Entry[]): Record<string, unknown> => Object.fromEntries(list.filter((e) => e.value !== undefined).map((e) => [e.setting.key, e.value]));
      return `${JSON.stringify({ ...values(server), apps: [{ ...values(app), webhooks: [values(webhook)] }] }, null, 2)}\n`;
    }
    case 'yaml': {
      const lines = ['# Switchboard configuration (YAML). Every setting is shown at its default.', ''];
      const put = (list: Entry[], indent: string, first?: string): void => {
        list.forEach((e, i) => {
          if (i > 0) lines.push('');
          lines.push(...comment(e.setting, indent, '#'));
          const lead = i === 0 && first !== undefined ? first : indent;
          lines.push(e.value === undefined ? `${indent}# ${e.setting.key}: ""` : `${lead}${e.setting.key}: ${JSON.stringify(e.value)}`);
        });
      };
      put(server, '');
      lines.push('', '# The apps; the first is the default app.', 'apps:');
      // The first key of a list item carries its "- ".
      put(app, '    ', '  - ');
      lines.push('    # Where the app\'s webhooks go (none by default).', '    webhooks:');
      put(webhook, '        ', '      - ');
      return `${lines.join('\n')}\n`;
    }
    case 'toml': {
      const lines = ['# Switchboard configuration (TOML). Every setting is shown at its default.', ''];
      const put = (list: Entry[]): void => {
        for (const e of list) {
          lines.push('', ...comment(e.setting, '', '#'));
          lines.push(e.value === undefined ? `# ${e.setting.key} = ""` : `${e.setting.key} = ${JSON.stringify(e.value)}`);
        }
      };
      put(server);
      lines.push('', '# The apps; the first is the default app.', '[[apps]]');
      put(app);
      lines.push('', "# Where the app's webhooks go (none by default).", '[[apps.webhooks]]');
      put(webhook);
      return `${lines.join('\n')}\n`;
    }
  }
}
