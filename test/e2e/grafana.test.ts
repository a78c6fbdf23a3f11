import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/cluster.js';
import { metricNames, scrape } from '../helpers/metrics.js';
import { startServer } from '../helpers/server.js';

// dist/test/e2e/grafana.test.js → deploy/grafana/switchboard.json
const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/switchboard.json', import.meta.url));

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

/** Every PromQL expression of the dashboard: its panels' queries and its variables' ones. */
function queries(dashboard: { panels: Panel[]; templating: { list: Array<{ definition?: string }> } }): string[] {
  return [
    ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ...dashboard.templating.list.flatMap((v) => (v.definition ? [v.definition] : [])),
  ];
}

describe('the Grafana dashboard', () => {
  it('queries only metrics that a running server exports', async (t) => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Parameters<typeof queries>[0];
    const panels = dashboard.panels.filter((p) => p.type !== 'row');
    assert.ok(panels.length >= 20);
    for (const panel of panels) assert.ok((panel.targets ?? []).length > 0, `${panel.title} has queries`);

    const server = await startServer({ metricsPort: await freePort() });
    t.after(() => server.close());
    const exported = metricNames((await scrape(server)).text);
    const used = new Set(queries(dashboard).flatMap((q) => q.match(/\bswitchboard_[a-z0-9_]+/g) ?? []));
    assert.ok(used.size >= 30, `${used.size} metrics used`);
    const missing = [...used].filter((name) => !exported.has(name) && !exported.has(name.replace(/_(bucket|sum|count)$/, '')));
    assert.deepEqual(missing, []);
  });
});
