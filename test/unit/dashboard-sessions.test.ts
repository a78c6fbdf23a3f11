import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DashboardSessions, LoginLimiter, cookieValue } from '../../src/dashboard/sessions.js';

describe('dashboard sessions', () => {
  test('a session is valid until it expires, and only under the password that signed it', () => {
    let now = 1_000_000;
    const sessions = new DashboardSessions(['correct horse battery'], 60_000, () => now);
    const cookie = sessions.issue();
    assert.equal(sessions.valid(cookie), true);
    assert.equal(new DashboardSessions(['another password!!'], 60_000, () => now).valid(cookie), false);
    const [expiry, nonce, mac] = cookie.split('.');
    assert.equal(sessions.valid(`${Number(expiry) + 1}.${nonce}.${mac}`), false, 'a changed expiry breaks the signature');
    now += 60_000;
    assert.equal(sessions.valid(cookie), false, 'expired');
  });

  test('the credential check accepts the password or the admin token, nothing else', () => {
    const sessions = new DashboardSessions(['correct horse battery', 'admin-token-0123456789'], 60_000);
    assert.equal(sessions.credentialMatches('correct horse battery'), true);
    assert.equal(sessions.credentialMatches('admin-token-0123456789'), true);
    assert.equal(sessions.credentialMatches('correct horse batter'), false);
    assert.equal(sessions.credentialMatches('admin-token-012345678'), false);
    assert.equal(sessions.credentialMatches(''), false);
  });

  test('a session signed under a password and token is refused once the token changes', () => {
    const cookie = new DashboardSessions(['correct horse battery', 'admin-token-0123456789'], 60_000).issue();
    assert.equal(new DashboardSessions(['correct horse battery', 'admin-token-0123456789'], 60_000).valid(cookie), true);
    assert.equal(new DashboardSessions(['correct horse battery', 'admin-token-9876543210'], 60_000).valid(cookie), false);
  });

  test('cookieValue finds one cookie among several', () => {
    assert.equal(cookieValue('a=1; sb_dashboard=x.y.z; b=2', 'sb_dashboard'), 'x.y.z');
    assert.equal(cookieValue('a=1', 'sb_dashboard'), undefined);
  });
});

describe('the sign-in limiter', () => {
  test('allows `limit` attempts per address per window, then refuses until the window ends', () => {
    let now = 0;
    const limiter = new LoginLimiter(3, 60_000, 100, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.attempt('10.0.0.1')), [true, true, true, false]);
    assert.equal(limiter.attempt('10.0.0.2'), true, 'another address has its own window');
    now += 60_000;
    assert.equal(limiter.attempt('10.0.0.1'), true);
  });
});
