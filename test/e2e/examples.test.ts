import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import vm from 'node:vm';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Switchboard } from '../../src/index.js';
import { api, closeAll, connectNative, refusal, subscribeNative, type NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';

/** Runs the examples/ whose interpreter this machine has, each against a real server. */

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const TOKEN = 'examples-api-token-123456';

const installed = (cmd: string, args = ['--version']): boolean => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const PYTHON = installed('python3');
const BASH_CURL = installed('bash') && installed('curl');

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command without blocking the event loop (the server under test lives in this process). */
function run(cmd: string, args: string[], env: Record<string, string>, stdin?: Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 10_000 }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') return reject(new Error(`${cmd} did not run: ${err.message}`, { cause: err }));
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

// --- a just-big-enough DOM for examples/web/index.html -------------------------------------

type Listener = (event: { type: string; preventDefault(): void }) => unknown;

class FakeElement {
  value = '';
  className = '';
  readonly children: FakeElement[] = [];
  private text = '';
  private readonly listeners = new Map<string, Listener[]>();

  constructor(
    readonly id: string,
    private readonly changed: () => void,
  ) {}

  get textContent(): string {
    return this.text;
  }
  set textContent(value: string) {
    this.text = value;
    this.changed();
  }
  appendChild(child: FakeElement): FakeElement {
    this.children.push(child);
    this.changed();
    return child;
  }
  addEventListener(type: string, listener: Listener): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  /** Dispatches an event and waits for async listeners (the page's fetches). */
  async fire(type: 'submit' | 'click'): Promise<void> {
    let prevented = false;
    const event = { type, preventDefault: () => (prevented = true) };
    for (const l of this.listeners.get(type) ?? []) await l(event);
    if (type === 'submit') assert.ok(prevented, `#${this.id} submit must not navigate away`);
  }
}

/**
 * Runs the page's inline script in a VM with the elements its HTML declares, the `ws` WebSocket
 * as the browser's (sending the cookies a browser would), and fetch against `origin`.
 */
class Page {
  private readonly elements = new Map<string, FakeElement>();
  private waiters: Array<() => void> = [];
  private cookie = '';
  readonly sockets: WebSocket[] = [];

  constructor(html: string, origin: string, hostname: string) {
    const changed = (): void => {
      for (const w of this.waiters.splice(0)) w();
    };
    for (const m of html.matchAll(/<(\w+)[^>]*\bid="([^"]+)"[^>]*>/g)) {
      const el = new FakeElement(m[2], changed);
      el.value = /\bvalue="([^"]*)"/.exec(m[0])?.[1] ?? '';
      this.elements.set(el.id, el);
    }
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    assert.equal(scripts.length, 1, 'the page has one inline script');
    const page = this;
    class BrowserWebSocket extends WebSocket {
      constructor(url: string) {
        super(url, page.cookie ? { headers: { Cookie: page.cookie } } : {});
        this.on('error', () => undefined); // a browser reports a refused upgrade through onclose
        page.sockets.push(this);
      }
    }
    const context = vm.createContext({
      document: {
        getElementById: (id: string) => this.elements.get(id) ?? null,
        createElement: () => new FakeElement('', changed),
      },
      location: { hostname },
      WebSocket: BrowserWebSocket,
      fetch: async (input: string, init?: RequestInit) => {
        const res = await fetch(new URL(input, origin), { ...init, headers: { ...(init?.headers as Record<string, string>), Cookie: this.cookie } });
        const set = res.headers.getSetCookie().map((c) => c.split(';')[0]);
        if (set.length) this.cookie = set.join('; ');
        return res;
      },
    });
    new vm.Script(scripts[0], { filename: 'examples/web/index.html' }).runInContext(context);
  }

  el(id: string): FakeElement {
    const el = this.elements.get(id);
    assert.ok(el, `#${id} exists`);
    return el;
  }

  get shown(): string[] {
    return this.el('messages').children.map((li) => li.textContent);
  }

  async until(check: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`page: no ${what}; status ${this.el('status').textContent}, messages ${JSON.stringify(this.shown)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  showing(text: string): Promise<void> {
    return this.until(() => this.shown.includes(text), `message "${text}"`);
  }

  async connect(url: string): Promise<void> {
    this.el('url').value = url;
    await this.el('connect-form').fire('submit');
    await this.until(() => this.el('status').textContent === 'connected', 'connection');
  }

  close(): void {
    for (const s of this.sockets) s.close();
  }
}

const pageHtml = (): string => readFileSync(`${EXAMPLES}web/index.html`, 'utf8');

describe('examples/web/index.html (native protocol in a static page)', () => {
  let server: Switchboard;
  let page: Page;
  before(async () => {
    server = await startServer({ apps: [{ ...APP, apiToken: TOKEN }] });
    page = new Page(pageHtml(), 'http://127.0.0.1:1', '127.0.0.1');
  });
  after(async () => {
    page.close();
    await server.close();
  });

  it('defaults to the envelope format on port 6001 of its own host', () => {
    assert.equal(page.el('url').value, 'ws://127.0.0.1:6001/ws?format=envelope');
  });

  it('connects anonymously, subscribes, shows broadcasts with their channel, shows errors, and unsubscribes', async () => {
    await page.connect(`ws://127.0.0.1:${server.port}/ws?format=envelope`);
    page.el('channel').value = 'news';
    await page.el('subscribe-form').fire('submit');
    await page.showing('subscribed to news');
    server.broadcast('news', 'Hello page');
    await page.showing('[news] message: Hello page');
    await api(server, 'POST', '/broadcast', { token: TOKEN, json: { channel: 'news', event: 'update', data: { n: 1 } } });
    await page.showing('[news] update: {"n":1}');
    page.el('channel').value = 'private-secrets';
    await page.el('subscribe-form').fire('submit');
    await page.showing('error FORBIDDEN_CHANNEL: Private and presence channels need a connection allowed to join them');
    page.el('channel').value = 'news';
    await page.el('unsubscribe').fire('click');
    await page.showing('unsubscribed from news');
  });

  it('shows the close code when disconnected', async () => {
    await page.el('disconnect').fire('click');
    await page.until(() => page.el('status').textContent.startsWith('closed (1005') || page.el('status').textContent.startsWith('closed (1000'), 'close');
  });
});

describe('examples/python/backend.py', () => {
  let server: Switchboard;
  let backend: ChildProcess | undefined;
  let backendUrl = '';
  const clients: NativeClient[] = [];
  let env: Record<string, string> = {};

  before(async () => {
    if (!PYTHON) return;
    const port = await freePort();
    backendUrl = `http://127.0.0.1:${port}`;
    server = await startServer({ apps: [{ ...APP, apiToken: TOKEN, authWebhookUrl: `${backendUrl}/auth`, authWebhookTimeoutMs: 2000 }] });
    env = { SWITCHBOARD_URL: server.url, SWITCHBOARD_API_TOKEN: TOKEN, HOST: '127.0.0.1', PORT: String(port) };
    const child = spawn('python3', [`${EXAMPLES}python/backend.py`], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    backend = child;
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => (line.startsWith('listening on') ? resolve() : reject(new Error(`backend said: ${line}`))));
      child.once('exit', (code) => reject(new Error(`backend exited with ${code}: ${stderr}`)));
    });
  });
  after(async () => {
    await closeAll(clients);
    if (backend && backend.exitCode === null) {
      const exited = new Promise((resolve) => backend?.once('exit', resolve));
      backend.kill('SIGTERM');
      await exited;
    }
    await server?.close();
  });

  const skipUnlessPython = (t: { skip(message?: string): void }): boolean => {
    if (PYTHON) return false;
    const reason = 'python3 is not installed on this machine';
    console.log(`examples.test: skipping the Python example: ${reason}`);
    t.skip(reason);
    return true;
  };
  const login = async (user: string): Promise<string> => {
    const res = await fetch(`${backendUrl}/login?user=${user}`);
    assert.equal(res.status, 200);
    const cookie = res.headers.getSetCookie()[0]?.split(';')[0];
    assert.match(cookie ?? '', /^session=/);
    return cookie;
  };

  it('is the auth webhook: a WebSocket with its session cookie connects as that user', async (t) => {
    if (skipUnlessPython(t)) return;
    const cookie = await login('alice');
    const c = await connectNative(server, '/ws?ack=1', { headers: { Cookie: cookie } });
    clients.push(c);
    const info = await api(server, 'GET', '/info', { token: TOKEN, query: { user: 'alice' } });
    assert.equal((info.json.connections as unknown[]).length, 1);
    await subscribeNative(c, 'private-user-alice');
    c.send({ action: 'subscribe', channel: 'private-user-bob' });
    await c.error('FORBIDDEN_CHANNEL', 'private-user-bob');
    assert.deepEqual(await refusal(server, '/ws', { headers: { Cookie: 'session=made-up' } }), {
      status: 401,
      body: { success: false, error: 'The auth webhook answered 401', errorCode: 'AUTH_REFUSED' },
    });
  });

  it('broadcasts through POST /messages and from the command line', async (t) => {
    if (skipUnlessPython(t)) return;
    const c = await connectNative(server, '/ws?ack=1', { headers: { Cookie: await login('bob') } });
    clients.push(c);
    await subscribeNative(c, 'news');
    const res = await fetch(`${backendUrl}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ channel: 'news', message: 'from the Python backend' }).toString(),
    });
    assert.deepEqual(await res.json(), { switchboard: { success: true } });
    await c.text('from the Python backend');
    const cli = await run('python3', [`${EXAMPLES}python/backend.py`, 'broadcast', 'news', 'from the Python CLI: ü & =?'], env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(JSON.parse(cli.stdout), { success: true });
    await c.text('from the Python CLI: ü & =?');
  });

  it('reports a refused broadcast (wrong token) with a non-zero exit', async (t) => {
    if (skipUnlessPython(t)) return;
    const cli = await run('python3', [`${EXAMPLES}python/backend.py`, 'broadcast', 'news', 'x'], { ...env, SWITCHBOARD_API_TOKEN: 'not-the-right-token' });
    assert.equal(cli.code, 1);
    assert.equal((JSON.parse(cli.stdout) as { errorCode?: string }).errorCode, 'INVALID_AUTHORIZATION');
  });

  it('serves the web page, which logs in, connects with the session and shows what the backend broadcasts', async (t) => {
    if (skipUnlessPython(t)) return;
    const html = await (await fetch(`${backendUrl}/`)).text();
    assert.equal(html, pageHtml());
    const page = new Page(html, backendUrl, '127.0.0.1');
    t.after(() => page.close());

    page.el('url').value = `ws://127.0.0.1:${server.port}/ws?format=envelope`;
    await page.el('connect-form').fire('submit');
    await page.until(() => page.el('status').textContent === 'closed (1006)', 'refusal before log-in');

    page.el('user').value = 'carol';
    await page.el('login-form').fire('submit');
    await page.showing('logged in as carol: connect again to use the session');
    await page.connect(`ws://127.0.0.1:${server.port}/ws?format=envelope`);
    page.el('channel').value = 'private-user-carol';
    await page.el('subscribe-form').fire('submit');
    await page.showing('subscribed to private-user-carol');
    page.el('message').value = 'sent from the page';
    await page.el('send-form').fire('submit');
    await page.showing('[private-user-carol] message: sent from the page');
  });
});

describe('examples/shell/broadcast.sh', () => {
  let server: Switchboard | undefined;
  const clients: NativeClient[] = [];
  const script = `${EXAMPLES}shell/broadcast.sh`;
  const sh = (args: string[], stdin?: Buffer, token = TOKEN): Promise<Run> =>
    run('bash', [script, ...args], { SWITCHBOARD_URL: server?.url ?? '', SWITCHBOARD_API_TOKEN: token }, stdin);

  before(async () => {
    if (BASH_CURL) server = await startServer({ apps: [{ ...APP, apiToken: TOKEN }] });
  });
  after(async () => {
    await closeAll(clients);
    await server?.close();
  });
  const skipUnlessShell = (t: { skip(message?: string): void }): boolean => {
    if (BASH_CURL) return false;
    const reason = 'bash or curl is not installed on this machine';
    console.log(`examples.test: skipping the shell example: ${reason}`);
    t.skip(reason);
    return true;
  };

  it('broadcasts to a channel (form fields, any characters)', async (t) => {
    if (skipUnlessShell(t) || !server) return;
    const c = await connectNative(server, '/ws?ack=1');
    clients.push(c);
    await subscribeNative(c, 'news');
    const out = await sh(['broadcast', 'news', 'from the shell: a&b=c ü "q"']);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { success: true });
    await c.text('from the shell: a&b=c ü "q"');
  });

  it('claims, lets the client connect with the claim, sends text and binary, then disconnects', async (t) => {
    if (skipUnlessShell(t) || !server) return;
    const made = await sh(['claim', 'bob smith', '30']);
    assert.equal(made.code, 0, made.stderr);
    const { claim } = JSON.parse(made.stdout) as { claim: { id: string; user: string } };
    assert.equal(claim.user, 'bob smith');
    const c = await connectNative(server, `/connect?claim=${encodeURIComponent(claim.id)}`);
    clients.push(c);

    const text = await sh(['send', 'bob smith', 'Hello Bob']);
    assert.deepEqual(JSON.parse(text.stdout), { success: true });
    await c.text('Hello Bob');
    const bytes = Buffer.from([0, 255, 10, 13, 64]);
    const binary = await sh(['send', 'bob smith', '-', 'binary'], bytes);
    assert.deepEqual(JSON.parse(binary.stdout), { success: true });
    assert.deepEqual((await c.frame((f) => f.binary)).data, bytes);

    const gone = await sh(['disconnect', 'bob smith']);
    assert.deepEqual(JSON.parse(gone.stdout), { success: true, disconnected: 1 });
    assert.equal(await c.closed, 4009);
  });

  it('exits non-zero and prints the error when the token is wrong', async (t) => {
    if (skipUnlessShell(t) || !server) return;
    const out = await sh(['broadcast', 'news', 'x'], undefined, 'not-the-right-token');
    assert.equal(out.code, 22);
    assert.equal((JSON.parse(out.stdout) as { errorCode?: string }).errorCode, 'INVALID_AUTHORIZATION');
  });
});

describe('examples/node/moderated-chat.mjs (Switchboard embedded, with hooks)', () => {
  let child: ChildProcess;
  let chat: Switchboard;
  const clients: NativeClient[] = [];
  const join = async (name: string): Promise<NativeClient> => {
    const c = await connectNative(chat, `/ws?format=envelope&name=${name}`);
    clients.push(c);
    await subscribeNative(c, 'chat');
    return c;
  };

  before(async () => {
    const port = await freePort();
    child = spawn(process.execPath, [`${EXAMPLES}node/moderated-chat.mjs`], { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const url = await new Promise<string>((resolve, reject) => {
      lines.on('line', (line) => {
        const m = /listening on (\S+)/.exec(line);
        if (m?.[1]) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`the example exited with ${code}`)));
    });
    // The helpers only need where it listens.
    chat = { port, url } as Switchboard;
  });
  after(async () => {
    await closeAll(clients);
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  });

  it('names and welcomes each connection, moderates what it sends (changed, renamed, refused, swallowed) and announces arrivals and departures', async () => {
    const alice = await join('alice');
    const bob = await join('bob');
    // The welcome, sent from connectionOpened, is the first thing the client gets.
    assert.deepEqual({ event: alice.json[0]?.event, data: alice.json[0]?.data }, { event: 'welcome', data: JSON.stringify({ from: 'server', text: 'Welcome, alice' }) });
    await alice.message((m) => m.event === 'notice' && m.data === JSON.stringify({ from: 'server', text: 'bob joined' }));
    alice.send({ action: 'publish', channel: 'chat', data: { text: 'well heck, hello' } });
    alice.send({ action: 'publish', channel: 'chat', data: '   ' });
    alice.send({ action: 'publish', channel: 'chat', data: 'see spam-link.example' });
    alice.send({ action: 'publish', channel: 'chat', data: '/me waves' });
    alice.send({ action: 'publish', channel: 'chat', data: 'bye' });
    await bob.message((m) => (m.data as { text?: string } | undefined)?.text === 'bye');
    assert.deepEqual(
      bob.json.filter((m) => m.channel === 'chat' && (m.event === 'message' || m.event === 'action')).map((m) => [m.event, m.data]),
      [['message', { from: 'alice', text: 'well ***, hello' }], ['action', { from: 'alice', text: 'waves' }], ['message', { from: 'alice', text: 'bye' }]],
    );
    assert.equal((await alice.error('MESSAGE_REJECTED', 'chat')).message, 'Links to that site are not allowed here');
    bob.close();
    await alice.message((m) => m.event === 'notice' && m.channel === '#all' && m.data === JSON.stringify({ from: 'server', text: 'bob left' }));
  });

  it('refuses a connection without a name (4010, with the reason)', async () => {
    const anonymous = await connectNative(chat, '/ws');
    clients.push(anonymous);
    assert.equal(await anonymous.closed, 4010);
    assert.equal(anonymous.closeReason, 'Connect with ?name=<your name>');
  });
});
