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
