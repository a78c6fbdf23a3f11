import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { extname } from 'node:path';
import type * as SmolToml from 'smol-toml';
import type * as Yaml from 'yaml';
import type { LineCounter } from 'yaml';

// Loaded when a file needs them: a server started from the environment alone skips their start-up cost.
const load = createRequire(import.meta.url);
const yaml = (): typeof Yaml => load('yaml') as typeof Yaml;
const toml = (): typeof SmolToml => load('smol-toml') as typeof SmolToml;

/** What a config file held, or why it could not be read; `lineOf` finds a setting's line where the format allows. */
export interface ConfigFile {
  readonly input: Record<string, unknown>;
  readonly problems: string[];
  /** The line (1-based) of the value at `path` (["apps", 0, "apiToken"]), when known. */
  readonly lineOf: (path: readonly PropertyKey[]) => number | undefined;
}

export const CONFIG_FORMATS = ['json', 'yaml', 'toml'] as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[number];

const BY_EXTENSION: Readonly<Record<string, ConfigFormat>> = { '.json': 'json', '.yaml': 'yaml', '.yml': 'yaml', '.toml': 'toml' };

const noLines = (): undefined => undefined;

/** The format of a config file, by its extension. */
export function configFormatOf(path: string): ConfigFormat | undefined {
  return BY_EXTENSION[extname(path).toLowerCase()];
}

/**
 * Reads a config file in the format its extension names (JSON, YAML or TOML): one object of
 * settings, with `apps`. Every problem is reported rather than thrown, with the file's line
 * where the parser gives one.
 */
export function readConfigFile(path: string): ConfigFile {
  const fail = (problem: string): ConfigFile => ({ input: {}, problems: [`${path}: ${problem}`], lineOf: noLines });
  const format = configFormatOf(path);
  if (format === undefined) return fail('unknown kind of file: name it .json, .yaml, .yml or .toml');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail((err as Error).message);
  }
  const parsed = parse(format, text);
  if ('problem' in parsed) return { input: {}, problems: [`${path}:${parsed.line === undefined ? '' : `${parsed.line}:`} ${parsed.problem}`], lineOf: noLines };
  const { value, lineOf } = parsed;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(`must hold a ${format.toUpperCase()} object of settings`);
  return { input: value as Record<string, unknown>, problems: [], lineOf };
}

type Parsed = { value: unknown; lineOf: ConfigFile['lineOf'] } | { problem: string; line: number | undefined };

function parse(format: ConfigFormat, text: string): Parsed {
  switch (format) {
    case 'json':
      try {
        // JSON is YAML too: its document finds where a value sits, for problems with it.
        return { value: JSON.parse(text), lineOf: (path) => yamlLines(text)(path) };
      } catch (err) {
        const message = (err as Error).message;
        // Node names the offset ("… at position 42"); people count lines.
        const at = /at position (\d+)/.exec(message);
        return { problem: message, line: at ? lineAt(text, Number(at[1])) : undefined };
      }
    case 'toml':
      try {
        return { value: toml().parse(text), lineOf: noLines };
      } catch (err) {
        if (err instanceof toml().TomlError) return { problem: (err.message.split('\n')[0]).replace(/^Invalid TOML document: /, ''), line: err.line };
        throw err;
      }
    case 'yaml': {
      const { LineCounter: Lines, parseDocument } = yaml();
      const lines = new Lines();
      const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
      const error = doc.errors[0];
      if (error) {
        // The message's first line, less the position it repeats ("… at line 3, column 7:").
        const problem = (error.message.split('\n')[0]).replace(/ at line \d+, column \d+:?$/, '');
        return { problem, line: error instanceof yaml().YAMLParseError ? error.linePos?.[0]?.line : undefined };
      }
      return { value: doc.toJS(), lineOf: linesOf(doc, lines) };
    }
  }
}

type YamlDocument = ReturnType<typeof Yaml.parseDocument>;

function linesOf(doc: YamlDocument, lines: LineCounter): ConfigFile['lineOf'] {
  return (path) => {
    const node: unknown = doc.getIn(path as unknown[], true);
    return yaml().isNode(node) && node.range ? lines.linePos(node.range[0]).line : undefined;
  };
}

/** Line look-ups over `text` read as YAML (parsed when first asked). */
function yamlLines(text: string): ConfigFile['lineOf'] {
  const { LineCounter: Lines, parseDocument } = yaml();
  const lines = new Lines();
  return linesOf(parseDocument(text, { lineCounter: lines }), lines);
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line += 1;
  return line;
}
