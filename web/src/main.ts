import { AppsPage, type AppRow } from './apps.js';
import { LineChart } from './charts.js';
import { DebugConsole } from './console.js';
import { ApiError, api, byId, formatNumber, h } from './dom.js';

interface NodeStats {
  node: string;
  healthy: boolean;
  connections: number;
  published: number;
  delivered: number;
  counters: Record<string, number>;
}
interface Overview {
  node: string;
  ready: { ready: boolean; serving: boolean; cluster: boolean };
  nodes: NodeStats[];
  totals: { connections: number; channels: number; users: number };
  at: number;
}
interface AppView {
  id: string;
  connections: number;
  channels: Array<{ name: string; subscribers: number; members?: string[] }>;
  channelsTotal: number;
  users: string[];
}

const REFUSALS = ['connections_refused_quota', 'connections_refused_capacity', 'connections_refused_ip_limit', 'connections_refused_rate', 'connections_refused_auth', 'api_requests_rate_limited', 'client_messages_rate_limited'];
const APP_REFRESH_MS = 2_000;

const views = ['overview', 'apps', 'console'] as const;
type View = (typeof views)[number];

let overviewSource: EventSource | undefined;
let appTimer: number | undefined;
let selectedApp: string | undefined;
const debugConsole = new DebugConsole(byId<HTMLOListElement>('log'), byId('console-status'));

async function start(): Promise<void> {
  const { signedIn } = await api<{ signedIn: boolean }>('/session');
  if (!signedIn) return showSignIn();
  byId('signin').hidden = true;
  byId('tabs').hidden = false;
  await appsPage.load();
  startOverview();
  show((location.hash.slice(1) as View) || 'overview');
}

function showSignIn(): void {
  overviewSource?.close();
  debugConsole.stop();
  byId('tabs').hidden = true;
  for (const v of views) byId(v).hidden = true;
  byId('signin').hidden = false;
  byId<HTMLInputElement>('password').focus();
}

function show(view: View): void {
  const name = views.includes(view) ? view : 'overview';
  for (const v of views) byId(v).hidden = v !== name;
  for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs [data-tab]')) b.setAttribute('aria-pressed', String(b.dataset.tab === name));
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  // The console streams from when it is first shown: an open overview makes no node tap.
  const app = byId<HTMLSelectElement>('console-app').value;
  if (name === 'console' && !debugConsole.watching && app) debugConsole.watch(app);
}

// --- overview ---

function startOverview(): void {
  const chart = new LineChart(byId('chart') as unknown as SVGSVGElement, ['in', 'out'], byId('chart-max'));
  let previous: Overview | undefined;
  overviewSource?.close();
  overviewSource = new EventSource('api/overview/stream');
  overviewSource.addEventListener('overview', (e) => {
    const o = JSON.parse((e as MessageEvent<string>).data) as Overview;
    const rates = previous ? perSecond(previous, o) : new Map<string, [number, number]>();
    let totalIn = 0;
    let totalOut = 0;
    for (const [rIn, rOut] of rates.values()) {
      totalIn += rIn;
      totalOut += rOut;
    }
    if (previous) chart.push([totalIn, totalOut]);
    previous = o;
    renderOverview(o, rates, totalIn, totalOut);
  });
  overviewSource.addEventListener('error', () => {
    // A lost session makes the stream fail: back to the sign-in form.
    api<{ signedIn: boolean }>('/session').then(({ signedIn }) => signedIn || showSignIn(), () => undefined);
  });
}

/** Per node: messages published from it and delivered by it per second, from two samples. */
function perSecond(a: Overview, b: Overview): Map<string, [number, number]> {
  const seconds = Math.max(0.001, (b.at - a.at) / 1000);
  const before = new Map(a.nodes.map((n) => [n.node, n]));
  const out = new Map<string, [number, number]>();
  for (const n of b.nodes) {
    const p = before.get(n.node);
    out.set(n.node, p ? [Math.max(0, n.published - p.published) / seconds, Math.max(0, n.delivered - p.delivered) / seconds] : [0, 0]);
  }
  return out;
}

function renderOverview(o: Overview, rates: Map<string, [number, number]>, totalIn: number, totalOut: number): void {
  const ready = byId('ready');
  ready.textContent = o.ready.ready ? `Ready · ${o.nodes.length} node(s) · this page is served by ${o.node}` : `Not ready (serving: ${o.ready.serving}, cluster: ${o.ready.cluster})`;
  ready.className = o.ready.ready ? 'ready ok' : 'ready bad';
  byId('t-connections').textContent = String(o.totals.connections);
  byId('t-channels').textContent = String(o.totals.channels);
  byId('t-users').textContent = String(o.totals.users);
  byId('t-in').textContent = formatNumber(totalIn);
  byId('t-out').textContent = formatNumber(totalOut);
  byId('t-webhooks').textContent = String(o.nodes.reduce((n, s) => n + (s.counters.webhook_queue ?? 0), 0));
  byId('nodes').querySelector('tbody')?.replaceChildren(
    ...o.nodes.map((n) => {
      const [rIn, rOut] = rates.get(n.node) ?? [0, 0];
      const refusals = REFUSALS.reduce((sum, k) => sum + (n.counters[k] ?? 0), 0);
      return h(
        'tr',
        { 'data-node': n.node },
        h('th', { scope: 'row' }, n.node),
        h('td', {}, n.healthy ? 'yes' : 'NO'),
        h('td', {}, String(n.connections)),
        h('td', {}, formatNumber(rIn)),
        h('td', {}, formatNumber(rOut)),
        h('td', {}, String(n.counters.slow_consumer_closes ?? 0)),
        h('td', {}, String(refusals)),
        h('td', {}, String(n.counters.webhook_queue ?? 0)),
      );
    }),
  );
}

// --- apps ---

/** The console's app list follows the Apps page's; the app watched stays when it is still there. */
function listApps(apps: readonly AppRow[]): void {
  const select = byId<HTMLSelectElement>('console-app');
  const watched = select.value;
  select.replaceChildren(...apps.map((a) => h('option', { value: a.id }, a.id)));
  if (apps.some((a) => a.id === watched)) select.value = watched;
  else if (apps[0] && debugConsole.watching) debugConsole.watch(apps[0].id);
}

function openApp(appId: string): void {
  selectedApp = appId;
  byId('app-detail').hidden = false;
  byId('app-title').textContent = `App ${appId}`;
  clearInterval(appTimer);
  refreshApp();
  appTimer = window.setInterval(refreshApp, APP_REFRESH_MS);
}

function refreshApp(): void {
  if (!selectedApp || byId('apps').hidden) return;
  const q = byId<HTMLInputElement>('search').value;
  api<AppView>(`/apps/${encodeURIComponent(selectedApp)}?q=${encodeURIComponent(q)}`).then(renderApp, failed);
}

function renderApp(a: AppView): void {
  byId('app-summary').textContent = `${a.connections} connection(s), ${a.channelsTotal} channel(s) matching, ${a.users.length} user(s) signed in`;
  byId('channels').querySelector('tbody')?.replaceChildren(
    ...a.channels.map((c) => h('tr', { 'data-channel': c.name }, h('th', { scope: 'row' }, c.name), h('td', {}, String(c.subscribers)), h('td', {}, c.members ? c.members.join(', ') : '–'))),
  );
  byId('users').replaceChildren(...a.users.map((u) => h('li', {}, u)));
}

function failed(err: unknown): void {
  if (err instanceof ApiError && err.status === 401) showSignIn();
}

const appsPage = new AppsPage(listApps, (appId) => openApp(appId), failed);

// --- wiring ---

byId<HTMLFormElement>('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const error = byId('signin-error');
  error.textContent = '';
  api('/login', { secret: byId<HTMLInputElement>('password').value }).then(
    () => start().catch(failed),
    (err: unknown) => {
      error.textContent = err instanceof Error ? err.message : 'Sign-in failed';
    },
  );
});
byId('sign-out').addEventListener('click', () => {
  api('/logout', {}).then(showSignIn, failed);
});
for (const b of document.querySelectorAll<HTMLButtonElement>('#tabs [data-tab]')) b.addEventListener('click', () => show(b.dataset.tab as View));
byId('search').addEventListener('input', refreshApp);
byId<HTMLSelectElement>('console-app').addEventListener('change', (e) => debugConsole.watch((e.target as HTMLSelectElement).value));
const applyFilter = (): void => debugConsole.setFilter(byId<HTMLInputElement>('console-filter').value, byId<HTMLSelectElement>('console-type').value);
byId('console-filter').addEventListener('input', applyFilter);
byId('console-type').addEventListener('change', applyFilter);
byId('pause').addEventListener('click', () => {
  const b = byId('pause');
  const paused = b.getAttribute('aria-pressed') !== 'true';
  b.setAttribute('aria-pressed', String(paused));
  b.textContent = paused ? 'Resume' : 'Pause';
  debugConsole.setPaused(paused);
});
byId('clear').addEventListener('click', () => debugConsole.clear());
byId<HTMLFormElement>('creator').addEventListener('submit', (e) => {
  e.preventDefault();
  const result = byId('creator-result');
  const appId = byId<HTMLSelectElement>('console-app').value;
  const body = { channel: byId<HTMLInputElement>('ev-channel').value, event: byId<HTMLInputElement>('ev-name').value, data: byId<HTMLTextAreaElement>('ev-data').value };
  api(`/apps/${encodeURIComponent(appId)}/publish`, body).then(
    () => (result.textContent = `Sent ${body.event} to ${body.channel}`),
    (err: unknown) => {
      failed(err);
      result.textContent = err instanceof Error ? `Not sent: ${err.message}` : 'Not sent';
    },
  );
});

start().catch(failed);
