import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, unknownEnvNames } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { createServer } from '../../src/index.js';
import { freePort } from '../helpers/cluster.js';
import { eventually } from '../helpers/wait.js';

/**
 * No Docker daemon runs here: the Dockerfile's steps are replayed in a clean folder (one per
 * stage; COPY copies, RUN runs in the stage's WORKDIR with its ENV), and the result must start and
 * answer its HEALTHCHECK. The compose file, the HAProxy config and the Kubernetes manifests are
 * parsed and checked against the server's real settings and endpoints.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');
/** How far past shutdownTimeoutMs the CLI lets a drain run before it exits regardless (src/cli/main.ts). */
const CLI_SHUTDOWN_OVERRUN_MS = 3_000;
/** A value for a secret the files leave to the operator. */
const PLACEHOLDER_SECRET = 'placeholder-secret-0123456789abcdef';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly name: string;
  readonly from: string;
  readonly steps: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const line of lines.map((l) => l.trim())) {
    if (line === '' || line.startsWith('#')) continue;
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [from = '', , name] = args.split(/\s+/);
      stages.push({ name: name ?? String(stages.length), from, steps: [] });
    } else {
      assert.ok(stages.length > 0, `${op} before FROM`);
      stages.at(-1)?.steps.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

/** `["a", "b"]` (exec form); the shell form would put `sh -c` in front of the server. */
function execForm(args: string): string[] {
  const parsed = JSON.parse(args) as unknown;
  assert.ok(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `exec form expected: ${args}`);
  return parsed;
}

/** What the last stage leaves for `docker run`: folder, working directory, environment, and its metadata. */
interface Image {
  readonly stageRoot: string;
  readonly workdir: string;
  readonly env: Record<string, string>;
  readonly meta: Map<string, string>;
  readonly from: string;
}

async function replay(stages: Stage[], into: string, dockerignore: string[]): Promise<Image> {
  let image: Image | undefined;
  for (const stage of stages) {
    const stageRoot = join(into, stage.name);
    mkdirSync(stageRoot, { recursive: true });
    let workdir = '/';
    const env: Record<string, string> = {};
    const meta = new Map<string, string>();
    for (const { op, args } of stage.steps) {
      const here = join(stageRoot, workdir);
      if (op === 'WORKDIR') {
        workdir = posix.resolve(workdir, args);
        mkdirSync(join(stageRoot, workdir), { recursive: true });
      } else if (op === 'ENV') {
        for (const m of args.matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
      } else if (op === 'COPY') {
        const words = args.split(/\s+/);
        const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
        const [dest, ...sources] = words.filter((w) => !w.startsWith('--')).reverse();
        const target = posix.resolve(workdir, dest);
        for (const source of sources.reverse()) {
          if (from === undefined) assert.ok(!dockerignore.includes(source.replace(/\/$/, '')), `COPY ${source} is excluded by .dockerignore`);
          const origin = from === undefined ? join(ROOT, source) : join(into, from, posix.resolve('/', source));
          const intoFolder = (dest).endsWith('/') || dest === '.' || sources.length > 1;
          const to = join(stageRoot, intoFolder && !statSync(origin).isDirectory() ? posix.join(target, basename(source)) : target);
          cpSync(origin, to, { recursive: true });
        }
      } else if (op === 'RUN') {
        await run('sh', ['-c', args], { cwd: here, env: { ...process.env, ...env }, timeout: 300_000 });
      } else if (['USER', 'EXPOSE', 'HEALTHCHECK', 'STOPSIGNAL', 'ENTRYPOINT', 'CMD'].includes(op)) {
        meta.set(op, args);
      } else {
        assert.fail(`the replay does not know ${op}: teach it before using it in the Dockerfile`);
      }
    }
    image = { stageRoot, workdir, env, meta, from: stage.from };
  }
  assert.ok(image, 'no stage');
  return image;
}

/** The server's settings from an environment the way the CLI reads them, refusing names that set nothing. */
function configFromEnv(env: Record<string, string>): Config {
  assert.deepEqual(unknownEnvNames(env), [], 'environment variables the server does not know');
  return loadConfig({ env });
}

/** Answers GET path on a server started with `config` (on a free loopback port). */
async function statusOf(config: Config, path: string): Promise<number> {
  const server = await createServer({ ...config, host: '127.0.0.1', port: 0, logLevel: 'silent', adapter: 'local' });
  try {
    return (await fetch(`${server.url}${path}`)).status;
  } finally {
    await server.close();
  }
}

describe('deployment files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-docker-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("the Dockerfile's steps, replayed in a clean folder, give a small non-root image whose server answers its HEALTHCHECK and drains on SIGTERM", async (t) => {
    const stages = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
    const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const excluded of ['node_modules', 'dist', '.git']) assert.ok(dockerignore.includes(excluded), `.dockerignore leaves out ${excluded}`);
    assert.ok(stages.length >= 2, 'multi-stage');
    const image = await replay(stages, dir, dockerignore);

    assert.match(image.from, /^node:24[-.]/, 'runs on the Node line CI tests');
    assert.ok(image.meta.get('USER') && !/^(root|0)(:|$)/.test(image.meta.get('USER') as string), 'runs as a user other than root');
    const entry = execForm(image.meta.get('ENTRYPOINT') ?? image.meta.get('CMD') ?? '[]');
    assert.equal(entry[0], 'node', 'node is PID 1 (not npm, not a shell), so SIGTERM reaches the server');
    const app = join(image.stageRoot, image.workdir);
    assert.ok(existsSync(join(app, 'node_modules', 'ws')), 'runtime dependencies are in');
    assert.ok(!existsSync(join(app, 'node_modules', 'typescript')), 'build-only dependencies are left in the build stage');
    assert.ok(!existsSync(join(app, 'src')) && !existsSync(join(app, 'dist', 'test')), 'no sources or tests in the image');

    const health = /^(?:--\S+\s+)*CMD\s+(\[.*\])$/.exec(image.meta.get('HEALTHCHECK') ?? '');
    assert.ok(health, `HEALTHCHECK with an exec-form CMD: ${image.meta.get('HEALTHCHECK')}`);
    const probe = execForm(health[1]);
    assert.equal(probe[0], 'node');

    // `docker run -e SWITCHBOARD_PORT=…`: a free loopback port instead of EXPOSE's, since other tests share the machine.
    const env = { PATH: process.env.PATH ?? '', ...image.env, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_PORT: String(await freePort()) };
    const healthcheck = async (): Promise<number> =>
      run(process.execPath, probe.slice(1), { cwd: app, env, timeout: 10_000 }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? -1,
      );
    const server = spawn(process.execPath, entry.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => server.kill('SIGKILL'));
    let out = '';
    server.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    server.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
    await eventually(() => out.includes('Switchboard listening on'), `the banner; got ${out}`, 15_000);
    assert.equal((await fetch(`http://127.0.0.1:${env.SWITCHBOARD_PORT}/up`)).status, 200);
    assert.equal(await healthcheck(), 0);

    server.kill((image.meta.get('STOPSIGNAL') ?? 'SIGTERM') as NodeJS.Signals);
    assert.deepEqual(await once(server, 'exit'), [0, null]);
    assert.equal(await healthcheck(), 1, 'the HEALTHCHECK fails once the server is gone');
  });

  it('the compose file runs two nodes on Redis behind HAProxy, which checks /up and reaches the nodes on their port', async () => {
    const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; ports?: string[]; volumes?: string[]; stop_grace_period?: string; networks?: Record<string, { ipv4_address?: string }>; build?: unknown }>;
    };
    const nodes = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    assert.equal(nodes.length, 2);
    const configs = new Map<string, Config>();
    for (const [name, service] of nodes) {
      const env = Object.fromEntries(Object.entries(service.environment ?? {}).map(([k, v]) => [k, String(v).replace(/^\$\{[^}]+\}$/, PLACEHOLDER_SECRET)]));
      const config = configFromEnv(env);
      assert.equal(config.adapter, 'redis');
      assert.ok(compose.services[new URL(config.redisUrl).hostname], `${name}: redisUrl names a service`);
      const grace = Number(/^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1]) * 1000;
      assert.ok(grace >= config.shutdownTimeoutMs + CLI_SHUTDOWN_OVERRUN_MS, `${name}: stop_grace_period ${grace} ms covers the drain`);
      configs.set(name, config);
    }

    const lb = compose.services.lb;
    assert.ok(lb, 'a load balancer service');
    const lbAddress = lb.networks?.default?.ipv4_address;
    for (const [name, config] of configs) assert.ok(config.trustedProxies.includes(lbAddress as string), `${name} trusts the load balancer's X-Forwarded-For`);
    const mount = lb.volumes?.find((v) => v.includes('haproxy.cfg'));
    assert.ok(mount && existsSync(join(DEPLOY, mount.split(':')[0])), 'the HAProxy config it mounts is in the repository');
    const published = Number(lb.ports?.[0]?.split(':').at(-1));

    const haproxy = readFileSync(join(DEPLOY, 'haproxy.cfg'), 'utf8');
    assert.equal(Number(/^\s*bind\s+:(\d+)/m.exec(haproxy)?.[1]), published, 'HAProxy listens on the published port');
    assert.match(haproxy, /^\s*timeout tunnel\s+\S+/m, 'upgraded WebSockets get a tunnel timeout of their own');
    const servers = [...haproxy.matchAll(/^\s*server\s+\S+\s+([\w-]+):(\d+)/gm)].map((m) => [m[1], Number(m[2])] as const);
    assert.deepEqual(servers.map(([host]) => host).sort(), [...configs.keys()].sort());
    for (const [host, port] of servers) assert.equal(port, configs.get(host)?.port, `HAProxy reaches ${host} on its port`);
    const check = /^\s*option httpchk GET (\S+)/m.exec(haproxy)?.[1];
    assert.equal(check, '/up', 'the health check that turns 503 while a node drains (not on every node when Redis is away)');
    assert.equal(await statusOf(configs.get('switchboard-1') as Config, check), 200);
  });

  it('the Kubernetes manifests probe /ready and /up on the container port, run as non-root, and give the drain time to finish', async () => {
    const docs = parseAllDocuments(readFileSync(join(DEPLOY, 'kubernetes.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, never>);
    type Probe = { httpGet: { path: string; port: string | number } };
    type Container = {
      ports: { name?: string; containerPort: number }[];
      env: { name: string; value?: string; valueFrom?: unknown }[];
      readinessProbe: Probe;
      livenessProbe: Probe;
      lifecycle?: { preStop?: { exec?: { command: string[] } } };
    };
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> }; spec: { terminationGracePeriodSeconds: number; securityContext: { runAsNonRoot: boolean; runAsUser: number }; containers: Container[] } } };
    };
    const service = docs.find((d) => d.kind === 'Service') as unknown as { spec: { selector: Record<string, string>; ports: { targetPort: string | number }[] } };
    assert.ok(deployment && service);
    const pod = deployment.spec.template.spec;
    const [container] = pod.containers;
    assert.ok(container);
    const config = configFromEnv(Object.fromEntries(container.env.map((e) => [e.name, e.value ?? PLACEHOLDER_SECRET])));

    const portOf = (ref: string | number): number | undefined => (typeof ref === 'number' ? ref : container.ports.find((p) => p.name === ref)?.containerPort);
    assert.equal(portOf(container.readinessProbe.httpGet.port), config.port);
    assert.equal(portOf(container.livenessProbe.httpGet.port), config.port);
    assert.equal(container.readinessProbe.httpGet.path, '/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/up');
    assert.equal(await statusOf(config, '/ready'), 200);
    assert.equal(await statusOf(config, '/up'), 200);
    for (const { targetPort } of service.spec.ports) assert.equal(portOf(targetPort), config.port, 'the Service reaches the container port');
    assert.deepEqual(service.spec.selector, deployment.spec.template.metadata.labels);
    assert.deepEqual(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels);

    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.notEqual(pod.securityContext.runAsUser, 0);
    const preStop = container.lifecycle?.preStop?.exec?.command ?? [];
    assert.equal(preStop[0], 'sleep', 'preStop waits for the endpoints to go before SIGTERM');
    const needMs = Number(preStop[1]) * 1000 + config.shutdownTimeoutMs + CLI_SHUTDOWN_OVERRUN_MS;
    assert.ok(pod.terminationGracePeriodSeconds * 1000 >= needMs, `terminationGracePeriodSeconds covers preStop + shutdownTimeoutMs + overrun (${needMs} ms)`);
  });
});
