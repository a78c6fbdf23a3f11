/**
 * The path and query of a request (HTTP API call or WebSocket upgrade). Targets in origin form
 * (`/apps/1/events?…`, what every SDK sends) are split as they arrive, and the query is parsed
 * only when read: a WHATWG URL per request cost the REST API about 3 % of its CPU. The path is
 * kept as the client sent it, which is also what a Pusher signature covers. Anything else
 * (absolute form from a proxy, `//…`) goes through the URL parser.
 */
export class RequestTarget {
  private params: URLSearchParams | undefined;

  private constructor(
    readonly pathname: string,
    private readonly query: string,
  ) {}

  get searchParams(): URLSearchParams {
    return (this.params ??= new URLSearchParams(this.query));
  }

  /**
   * `searchParams.get(name)`, without parsing the whole query when it has nothing to decode:
   * a Pusher handshake reads one of pusher-js's four parameters, and building the
   * URLSearchParams was ~0.5 % of the server's CPU in a connection storm. A query with
   * escapes (`%`, `+`) or a leading `?` goes through URLSearchParams.
   */
  param(name: string): string | null {
    const q = this.query;
    if (this.params !== undefined || q.charCodeAt(0) === 63 /* ? */ || q.includes('%') || q.includes('+')) return this.searchParams.get(name);
    let start = 0;
    while (start < q.length) {
      let end = q.indexOf('&', start);
      if (end < 0) end = q.length;
      const eq = q.indexOf('=', start);
      const keyEnd = eq >= 0 && eq < end ? eq : end;
      // Empty pairs (`a=1&&b=2`) are skipped, as URLSearchParams skips them.
      if (end > start && keyEnd - start === name.length && q.startsWith(name, start)) return keyEnd === end ? '' : q.slice(keyEnd + 1, end);
      start = end + 1;
    }
    return null;
  }

  /** Undefined when the URL parser cannot read the target: the caller answers 400. */
  static parse(raw: string): RequestTarget | undefined {
    if (raw.charCodeAt(0) === 47 /* / */ && raw.charCodeAt(1) !== 47) {
      const hash = raw.indexOf('#');
      const target = hash < 0 ? raw : raw.slice(0, hash);
      const q = target.indexOf('?');
      return q < 0 ? new RequestTarget(target, '') : new RequestTarget(target.slice(0, q), target.slice(q + 1));
    }
    let url: URL;
    try {
      url = new URL(raw, 'http://localhost');
    } catch {
      return undefined;
    }
    return new RequestTarget(url.pathname, url.search.slice(1));
  }
}
