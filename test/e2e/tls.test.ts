import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as netConnect } from 'node:net';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { after, before, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { createServer, type Switchboard } from '../../src/index.js';
import { makePki, type Leaf, type Pki } from '../helpers/certs.js';
import { serverSdk } from '../helpers/clients.js';
import { freePort } from '../helpers/cluster.js';
import { NativeClient } from '../helpers/native.js';
import { APP, startServer } from '../helpers/server.js';
import { eventually } from '../helpers/wait.js';

const CHILD = fileURLToPath(new URL('../helpers/tls-pusher-child.js', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** The certificate a new TLS handshake with 127.0.0.1:port gets, verified against `ca`. */
async function servedFingerprint(port: number, ca: string): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().fingerprint256;
  } finally {
    socket.destroy();
  }
}

function get(url: string, ca?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const done = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    };
    const req = url.startsWith('https:') ? httpsRequest(url, { ca }, done) : httpRequest(url, done);
    req.on('error', reject).end();
  });
}

/** Starts the test app over TLS with the given leaf; the PEM files are copied so a test may replace them. */
async function startTlsServer(t: TestContext, pki: Pki, leaf: Leaf, extra: Record<string, unknown> = {}): Promise<{ server: Switchboard; certFile: string; keyFile: string }> {
  const dir = mkdtempSync(join(pki.dir, 'live-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  copyFileSync(leaf.certFile, certFile);
  copyFileSync(leaf.keyFile, keyFile);
  const server = await startServer({ tlsCert: certFile, tlsKey: keyFile, tlsCa: pki.intermediateFile, ...extra });
  t.after(() => server.close());
  return { server, certFile, keyFile };
}

/** Replaces a file the way cert-manager and certbot do: a new file renamed over the old one. */
function replaceFile(target: string, source: string): void {
  copyFileSync(source, `${target}.new`);
  renameSync(`${target}.new`, target);
}

/** A certificate authority in a temporary folder, with two leaf certificates it issued. */
function freshPki(): { pki: Pki; first: Leaf; second: Leaf } {
  const pki = makePki(mkdtempSync(join(tmpdir(), 'switchboard-tls-')));
  return { pki, first: pki.issue('first'), second: pki.issue('second') };
}

describe('TLS', () => {
  let pki: Pki;
  let first: Leaf;
  let second: Leaf;
  before(() => ({ pki, first, second } = freshPki()));
  after(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('pusher-js with forceTLS receives over wss:// what the pusher SDK with useTLS triggers over https://', async (t) => {
    const { server } = await startTlsServer(t, pki, first);
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const child: ChildProcess = spawn(process.execPath, [CHILD, String(server.port), APP.key, 'news'], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: pki.rootFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    const lines: Array<Record<string, unknown>> = [];
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      for (const line of d.split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    });
    await eventually(() => lines.some((l) => l.subscribed === 'news'), `pusher-js subscribed over wss; got ${JSON.stringify(lines)} ${stderr}`, 10_000);

    const sdk = serverSdk(server, APP, { useTLS: true, agent: new Agent({ ca: pki.rootPem }) });
    const res = await sdk.trigger('news', 'headline', { n: 1 });
    assert.equal(res.status, 200);
    await eventually(() => lines.find((l) => l.event === 'headline'), 'the event over wss', 5_000);
    assert.deepEqual(lines.find((l) => l.event === 'headline')?.data, { n: 1 });
  });

  it('a native client gets wss:// on the same port, and /up answers over https://', async (t) => {
    const { server } = await startTlsServer(t, pki, first);
    const client = new NativeClient(new WebSocket(`wss://127.0.0.1:${server.port}/ws?channel=room`, { ca: pki.rootPem }));
    t.after(() => client.ws.terminate());
    await once(client.ws, 'open');
    await client.sync();
    server.broadcast('room', 'over tls');
    await client.text('over tls');
    assert.equal((await get(`${server.url}/up`, pki.rootPem)).status, 200);
  });

  it('sends tlsCa after the certificate: without it, a client trusting only the root cannot verify the leaf', async (t) => {
    const { server } = await startTlsServer(t, pki, first);
    assert.equal(await servedFingerprint(server.port, pki.rootPem), first.fingerprint);
    const bare = await startServer({ tlsCert: first.certFile, tlsKey: first.keyFile });
    t.after(() => bare.close());
    await assert.rejects(servedFingerprint(bare.port, pki.rootPem), /unable to verify the first certificate/);
  });

  it('reads an encrypted key with tlsPassphrase; a wrong one fails the start naming the key file, never the passphrase', async (t) => {
    const locked = pki.issue('locked', 'correct horse battery staple');
    const server = await startServer({ tlsCert: locked.certFile, tlsKey: locked.keyFile, tlsCa: pki.intermediateFile, tlsPassphrase: 'correct horse battery staple' });
    t.after(() => server.close());
    assert.equal(await servedFingerprint(server.port, pki.rootPem), locked.fingerprint);
    const err = await startServer({ tlsCert: locked.certFile, tlsKey: locked.keyFile, tlsPassphrase: 'wrong passphrase here' }).then(
      () => assert.fail('started with a wrong passphrase'),
      (e: unknown) => e as Error,
    );
    assert.equal(err.name, 'TlsLoadError');
    assert.ok(err.message.includes(locked.keyFile), err.message);
    assert.ok(!err.message.includes('wrong passphrase here'), err.message);
  });

  it('picks up renewed files without dropping open connections; the metrics listener gets the new certificate too', async (t) => {
    const { server, certFile, keyFile } = await startTlsServer(t, pki, first, { metricsPort: await freePort(), metricsHost: '127.0.0.1', metricsTls: true });
    const client = new NativeClient(new WebSocket(`wss://127.0.0.1:${server.port}/ws?channel=room`, { ca: pki.rootPem }));
    t.after(() => client.ws.terminate());
    await once(client.ws, 'open');
    await client.sync();

    replaceFile(keyFile, second.keyFile);
    replaceFile(certFile, second.certFile);
    await eventually(async () => (await servedFingerprint(server.port, pki.rootPem)) === second.fingerprint, 'the renewed certificate on new handshakes', 5_000);
    assert.equal(await servedFingerprint(server.metricsPort as number, pki.rootPem), second.fingerprint);

    // The connection opened before the renewal is still up, on its old certificate.
    assert.equal(client.closeCode, undefined);
    assert.equal((client.ws as unknown as { _socket: TLSSocket })._socket.getPeerCertificate().fingerprint256, first.fingerprint);
    server.broadcast('room', 'after renewal');
    await client.text('after renewal');
  });
});

describe('TLS reload and refusals', () => {
  let pki: Pki;
  let first: Leaf;
  let second: Leaf;
  before(() => ({ pki, first, second } = freshPki()));
  after(() => rmSync(pki.dir, { recursive: true, force: true }));

  it('keeps serving the old certificate when the new files cannot be used, and logs why', async (t) => {
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    const dir = mkdtempSync(join(pki.dir, 'live-'));
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    const server = await createServer({ host: '127.0.0.1', port: 0, tlsCert: certFile, tlsKey: keyFile, tlsCa: pki.intermediateFile, tlsWatch: false }, { log });
    t.after(() => server.close());

    // The new certificate arrived, its key not yet: they do not match.
    copyFileSync(second.certFile, certFile);
    assert.equal(server.reloadTls(), false);
    assert.equal(await servedFingerprint(server.port, pki.rootPem), first.fingerprint);
    const failure = lines.find((l) => l.msg === 'TLS reload failed: still serving the previous certificate');
    assert.match(String(failure?.error), /cannot be used/);

    copyFileSync(second.keyFile, keyFile);
    assert.equal(server.reloadTls(), true);
    assert.equal(await servedFingerprint(server.port, pki.rootPem), second.fingerprint);
  });

  it('the CLI reloads on SIGHUP (file watching off) and keeps running', async (t) => {
    const dir = mkdtempSync(join(pki.dir, 'live-'));
    const certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    const child = spawn(process.execPath, [MAIN, '--host', '127.0.0.1', '--port', '0', '--tls-cert', certFile, '--tls-key', keyFile, '--tls-ca', pki.intermediateFile, '--tls-watch', 'false'], {
      env: { PATH: process.env.PATH },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    const port = await eventually(() => Number(/listening on 127\.0\.0\.1:(\d+) \(WebSocket \+ HTTP over TLS\)/.exec(out)?.[1]) || undefined, `the banner; got ${out}`, 10_000);
    assert.equal(await servedFingerprint(port, pki.rootPem), first.fingerprint);

    replaceFile(keyFile, second.keyFile);
    replaceFile(certFile, second.certFile);
    child.kill('SIGHUP');
    await eventually(() => out.includes('TLS certificate reloaded'), `the reload log line; got ${out}`, 5_000);
    assert.equal(await servedFingerprint(port, pki.rootPem), second.fingerprint);
    assert.equal(child.exitCode, null);
  });

  it('the CLI refuses to start with exit code 2 when the key file is missing or unreadable', async () => {
    const missing = join(pki.dir, 'no-such-key.pem');
    const run = spawn(process.execPath, [MAIN, '--port', '0', '--tls-cert', first.certFile, '--tls-key', missing], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    run.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const [code] = (await once(run, 'exit')) as [number];
    assert.equal(code, 2);
    assert.match(stderr, new RegExp(`cannot read the TLS key file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));

    const garbage = join(pki.dir, 'garbage.key');
    writeFileSync(garbage, 'not a key\n');
    const bad = spawn(process.execPath, [MAIN, '--port', '0', '--tls-cert', first.certFile, '--tls-key', garbage], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'ignore', 'pipe'] });
    let badErr = '';
    bad.stderr?.setEncoding('utf8').on('data', (d: string) => (badErr += d));
    assert.equal(((await once(bad, 'exit')) as [number])[0], 2);
    assert.match(badErr, /cannot be used/);
  });

  it('cuts a connection that does not finish its TLS handshake within handshakeTimeoutMs', async (t) => {
    const server = await startServer({ tlsCert: first.certFile, tlsKey: first.keyFile, handshakeTimeoutMs: 300 });
    t.after(() => server.close());
    const silent = netConnect(server.port, '127.0.0.1');
    t.after(() => silent.destroy());
    await once(silent, 'connect');
    const started = Date.now();
    await once(silent, 'close');
    assert.ok(Date.now() - started < 3_000, `closed after ${Date.now() - started} ms`);
  });

  it('redirects plain HTTP to https:// with 308, keeping the path and query', async (t) => {
    const redirecting = await createServer({
      host: '127.0.0.1',
      port: 0,
      logLevel: 'silent',
      tlsCert: first.certFile,
      tlsKey: first.keyFile,
      tlsCa: pki.intermediateFile,
      tlsRedirectPort: await freePort(),
    });
    t.after(() => redirecting.close());
    const res = await get(`http://127.0.0.1:${redirecting.redirectPort}/up?probe=1`);
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, `https://127.0.0.1:${redirecting.port}/up?probe=1`);
    assert.equal((await get(String(res.headers.location), pki.rootPem)).status, 200);
  });

  it('serves the metrics listener over TLS with metricsTls', async (t) => {
    const server = await startServer({ tlsCert: first.certFile, tlsKey: first.keyFile, tlsCa: pki.intermediateFile, metricsPort: await freePort(), metricsHost: '127.0.0.1', metricsTls: true });
    t.after(() => server.close());
    const res = await get(`https://127.0.0.1:${server.metricsPort}/metrics`, pki.rootPem);
    assert.equal(res.status, 200);
    assert.match(res.body, /switchboard_/);
  });

  it('serves the dashboard alone on its own port over TLS with dashboardTls; a plain-HTTP client gets nothing there', async (t) => {
    const server = await startServer({ tlsCert: first.certFile, tlsKey: first.keyFile, tlsCa: pki.intermediateFile, dashboardPassword: 'correct horse battery staple', dashboardPort: await freePort(), dashboardTls: true });
    t.after(() => server.close());
    const page = await get(`https://127.0.0.1:${server.dashboardPort}/dashboard/`, pki.rootPem);
    assert.equal(page.status, 200);
    assert.match(page.body, /Switchboard dashboard/);
    await assert.rejects(get(`http://127.0.0.1:${server.dashboardPort}/dashboard/`));
  });
});
