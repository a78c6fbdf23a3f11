import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { OriginMatcher, isOriginPattern } from '../../src/util/origin-pattern.js';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig({ env });
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  return [];
}

describe('TLS settings', () => {
  it('refuses tlsCert without tlsKey, and the other TLS settings without both', () => {
    assert.deepEqual(problemsOf({ SWITCHBOARD_TLS_CERT: '/c.pem' }), ['tlsKey: tlsCert and tlsKey go together']);
    assert.deepEqual(problemsOf({ SWITCHBOARD_TLS_REDIRECT_PORT: '8080', SWITCHBOARD_METRICS_TLS: 'true', SWITCHBOARD_TLS_PASSPHRASE: 'x' }).sort(), [
      'metricsTls: needs tlsCert and tlsKey',
      'tlsPassphrase: needs tlsCert and tlsKey',
      'tlsRedirectPort: needs tlsCert and tlsKey',
    ]);
    assert.deepEqual(problemsOf({ SWITCHBOARD_TLS_CERT: '/c.pem', SWITCHBOARD_TLS_KEY: '/k.pem', SWITCHBOARD_PORT: '8443', SWITCHBOARD_TLS_REDIRECT_PORT: '8443' }), [
      'tlsRedirectPort: must differ from port',
    ]);
  });

  it('reads the TLS settings from the environment, a numeric-looking passphrase as text', () => {
    const config = loadConfig({ env: { SWITCHBOARD_TLS_CERT: '/c.pem', SWITCHBOARD_TLS_KEY: '/k.pem', SWITCHBOARD_TLS_PASSPHRASE: '12345', SWITCHBOARD_TLS_WATCH: 'false' } });
    assert.equal(config.tlsPassphrase, '12345');
    assert.equal(config.tlsWatch, false);
  });
});

describe('dashboard listener settings', () => {
  it('refuse a dashboard port without a credential, on the main port, and dashboardTls without a port of its own', () => {
    assert.deepEqual(problemsOf({ SWITCHBOARD_DASHBOARD_PORT: '8081' }), ['dashboardPort: needs dashboardPassword or adminToken (the dashboard is off without one)']);
    assert.deepEqual(problemsOf({ SWITCHBOARD_DASHBOARD_PASSWORD: 'correct horse battery', SWITCHBOARD_PORT: '8081', SWITCHBOARD_DASHBOARD_PORT: '8081' }), [
      'dashboardPort: must differ from port (0 serves the dashboard on the main port)',
    ]);
    assert.deepEqual(problemsOf({ SWITCHBOARD_TLS_CERT: '/c.pem', SWITCHBOARD_TLS_KEY: '/k.pem', SWITCHBOARD_DASHBOARD_PASSWORD: 'correct horse battery', SWITCHBOARD_DASHBOARD_TLS: 'true' }), [
      'dashboardTls: needs dashboardPort (on the main port the dashboard is served as the port is)',
    ]);
    assert.deepEqual(problemsOf({ SWITCHBOARD_ADMIN_TOKEN: 'admin-token-0123456789', SWITCHBOARD_DASHBOARD_PORT: '8081' }), []);
  });
});

describe('CORS origins', () => {
  it('come from SWITCHBOARD_CORS_ORIGINS and SWITCHBOARD_APP_CORS_ORIGINS as lists, and refuse what is not an origin pattern', () => {
    const config = loadConfig({ env: { SWITCHBOARD_CORS_ORIGINS: 'https://a.example.com, https://*.b.example.com', SWITCHBOARD_APP_CORS_ORIGINS: '*.c.example.com' } });
    assert.deepEqual(config.corsOrigins, ['https://a.example.com', 'https://*.b.example.com']);
    assert.deepEqual(config.apps[0]?.corsOrigins, ['*.c.example.com']);
    const problems = problemsOf({ SWITCHBOARD_CORS_ORIGINS: 'https://a.example.com/path' });
    assert.equal(problems.length, 1);
    assert.match(problems[0], /^corsOrigins\.0: must be \*, an origin/);
  });

  it('accept *, origins and sub-domain patterns only', () => {
    for (const ok of ['*', 'https://a.example.com', 'http://localhost:8080', 'https://*.example.com', '*.example.com', 'https://[::1]:8443']) assert.ok(isOriginPattern(ok), ok);
    for (const bad of ['', 'https://', 'https://a.example.com/', 'https://*example.com', 'https://a.*.example.com', 'https://user@a.example.com', '*.', 'https://-a.example.com']) {
      assert.ok(!isOriginPattern(bad), bad);
    }
  });

  it('match a pattern without a scheme on any scheme and port; one with a scheme on that scheme and its default port', () => {
    const bare = new OriginMatcher(['*.example.com']);
    for (const origin of ['https://a.example.com', 'http://a.example.com:8080']) assert.ok(bare.allows(origin), origin);
    for (const origin of ['https://example.com', 'https://a.example.com.evil.com', 'https://evil-example.com', 'https://.example.com']) assert.ok(!bare.allows(origin), origin);
    const exact = new OriginMatcher(['https://a.example.com', 'http://localhost:8080']);
    for (const origin of ['https://a.example.com', 'https://a.example.com:443', 'http://localhost:8080']) assert.ok(exact.allows(origin), origin);
    for (const origin of ['http://a.example.com', 'https://a.example.com:444', 'http://localhost', 'https://a.example.com/x', 'null']) assert.ok(!exact.allows(origin), origin);
    assert.ok(new OriginMatcher(['*']).allows('null'));
    assert.ok(new OriginMatcher([]).isEmpty);
  });
});
