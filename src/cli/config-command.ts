import { ConfigError, validateConfig } from '../config/load.js';
import { exampleConfig } from '../config/example.js';
import { CONFIG_FORMATS, readConfigFile, type ConfigFormat } from '../config/file.js';

/** What a command writes and its exit code; main() does the writing, so commands stay testable. */
export interface CommandResult {
  readonly code: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

const USAGE = 'usage: switchboard config check FILE | switchboard config example [--format yaml|toml|json]';

/** `switchboard config check FILE` and `switchboard config example`. */
export function configCommand(args: readonly string[]): CommandResult {
  const [sub, ...rest] = args;
  if (sub === 'check') return check(rest);
  if (sub === 'example') return example(rest);
  return { code: 2, stderr: `switchboard config: ${sub === undefined ? 'needs a subcommand' : `unknown subcommand "${sub}"`}\n${USAGE}\n` };
}

/** The file alone (no environment, no flags), as the server would take it: every problem, exit 2; or "ok". */
function check(args: readonly string[]): CommandResult {
  if (args.length !== 1) return { code: 2, stderr: `switchboard config check: needs exactly one FILE\n${USAGE}\n` };
  const path = args[0];
  const file = readConfigFile(path);
  try {
    validateConfig(file.input, file.problems, { ...file, path });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return { code: 2, stdout: `${err.problems.map((p) => `${p}\n`).join('')}${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${path}\n` };
  }
  return { code: 0, stdout: 'ok\n' };
}

function example(args: readonly string[]): CommandResult {
  let format: string = 'yaml';
  if (args.length > 0) {
    const m = args.length === 1 ? /^--format=(.+)$/.exec(args[0]) : null;
    if (m) format = m[1];
    else if (args.length === 2 && args[0] === '--format') format = args[1];
    else return { code: 2, stderr: `switchboard config example: unexpected ${args.join(' ')}\n${USAGE}\n` };
  }
  if (!(CONFIG_FORMATS as readonly string[]).includes(format)) return { code: 2, stderr: `switchboard config example: --format must be one of ${CONFIG_FORMATS.join(', ')}\n` };
  return { code: 0, stdout: exampleConfig(format as ConfigFormat) };
}
