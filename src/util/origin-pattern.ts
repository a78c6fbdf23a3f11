/**
 * Browser origins and the patterns that allow them: `*`, an exact origin
 * (`https://app.example.com[:port]`), or the sub-domains of one (`https://*.example.com`, or
 * `*.example.com` for any scheme and port). A sub-domain pattern compares whole DNS labels from the
 * right, so `example.com.evil.com` and `evil-example.com` are not sub-domains of `example.com`.
 */

const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const HOST = `(?:${LABEL}(?:\\.${LABEL})*|\\[[0-9a-f:.]+\\])`;
const ORIGIN = new RegExp(`^([a-z][a-z0-9+.-]*)://(${HOST})(?::(\\d{1,5}))?$`);
const PATTERN = new RegExp(`^(?:([a-z][a-z0-9+.-]*)://)?(\\*\\.)?(${HOST})(?::(\\d{1,5}))?$`);
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443' };

interface Origin {
  readonly scheme: string;
  readonly host: string;
  /** '' for the scheme's default port. */
  readonly port: string;
}

interface Rule {
  /** Undefined: any scheme, and then any port unless one is given. */
  readonly scheme: string | undefined;
  readonly host: string;
  readonly subdomains: boolean;
  readonly port: string | undefined;
}

function withoutDefaultPort(scheme: string | undefined, port: string | undefined): string | undefined {
  return port !== undefined && scheme !== undefined && DEFAULT_PORTS[scheme] === port ? '' : port;
}

/** An Origin header as browsers send it; undefined for `null` and anything malformed. */
function parseOrigin(header: string): Origin | undefined {
  const m = ORIGIN.exec(header.toLowerCase());
  if (!m) return undefined;
  const scheme = m[1];
  return { scheme, host: m[2], port: withoutDefaultPort(scheme, m[3]) ?? '' };
}

function parseRule(pattern: string): Rule | undefined {
  const m = PATTERN.exec(pattern.toLowerCase());
  if (!m) return undefined;
  const scheme = m[1];
  const port = withoutDefaultPort(scheme, m[4]);
  // With a scheme, no port means its default one, as in an Origin header.
  return { scheme, host: m[3], subdomains: m[2] !== undefined, port: scheme !== undefined && port === undefined ? '' : port };
}

/** For the config schema: whether `pattern` is one of the forms above. */
export function isOriginPattern(pattern: string): boolean {
  return pattern === '*' || parseRule(pattern) !== undefined;
}

function matches(rule: Rule, origin: Origin): boolean {
  if (rule.scheme !== undefined && rule.scheme !== origin.scheme) return false;
  if (rule.port !== undefined && rule.port !== origin.port) return false;
  return rule.subdomains ? origin.host.endsWith(`.${rule.host}`) : origin.host === rule.host;
}

/** A list of patterns, parsed once. */
export class OriginMatcher {
  private readonly any: boolean;
  private readonly rules: readonly Rule[];

  constructor(patterns: readonly string[]) {
    this.any = patterns.includes('*');
    this.rules = patterns.flatMap((p) => parseRule(p) ?? []);
  }

  get isEmpty(): boolean {
    return !this.any && this.rules.length === 0;
  }

  allows(header: string): boolean {
    if (this.any) return true;
    const origin = parseOrigin(header);
    return origin !== undefined && this.rules.some((rule) => matches(rule, origin));
  }
}
