import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.js';
import type { App } from '../../src/core/app.js';
import { SIGNATURE_WINDOW_SECONDS, stringToSign, verifyPusherSignature } from '../../src/http/pusher-signature.js';
import { HttpError } from '../../src/http/errors.js';
import { hmacSha256Hex } from '../../src/util/hmac.js';

// Pusher's published worked example (https://pusher.com/docs/channels/library_auth_reference/rest-api/#worked-authentication-example).
const KEY = '278d425bdf160c739803';
const SECRET = '7ad3773142a6692b25b8';
const TIMESTAMP = 1353088179;
const PATH = '/apps/3/events';
const BODY = Buffer.from('{"name":"foo","channels":["project-3"],"data":"{\\"some\\":\\"data\\"}"}');
const BODY_MD5 = 'ec365a775a4cd0599faeb73354201b6f';
const SIGNATURE = 'da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c';
const EXPECTED_STRING = `POST\n${PATH}\nauth_key=${KEY}&auth_timestamp=${TIMESTAMP}&auth_version=1.0&body_md5=${BODY_MD5}`;

const app: App = validateConfig({ apps: [{ id: '3', key: KEY, secret: SECRET }] }).apps[0];

function exampleQuery(signature = SIGNATURE): URLSearchParams {
  // Deliberately out of order: the signer must sort.
  return new URLSearchParams({ body_md5: BODY_MD5, auth_version: '1.0', auth_key: KEY, auth_timestamp: String(TIMESTAMP), auth_signature: signature });
}

function refusal(fn: () => void): HttpError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HttpError, `expected an HttpError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the request to be refused');
}

describe('Pusher REST signature', () => {
  it('builds the string to sign of the worked example (auth_signature left out, keys sorted)', () => {
    assert.equal(stringToSign('POST', PATH, exampleQuery()), EXPECTED_STRING);
  });

  it('upper-cases the method', () => {
    assert.equal(stringToSign('post', PATH, exampleQuery()), EXPECTED_STRING);
  });

  it('signs the worked example to the published signature', () => {
    assert.equal(hmacSha256Hex(SECRET, stringToSign('POST', PATH, exampleQuery())), SIGNATURE);
  });

  it('the example body has the published body_md5', async () => {
    const { createHash } = await import('node:crypto');
    assert.equal(createHash('md5').update(BODY).digest('hex'), BODY_MD5);
  });

  it('accepts the worked example at its own timestamp', () => {
    assert.doesNotThrow(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), BODY, TIMESTAMP));
  });

  it('accepts the example at the edge of the 600 s window, both ways', () => {
    assert.equal(SIGNATURE_WINDOW_SECONDS, 600);
    assert.doesNotThrow(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), BODY, TIMESTAMP + 600));
    assert.doesNotThrow(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), BODY, TIMESTAMP - 600));
  });

  it('refuses the example 601 s later (replay) with 401', () => {
    const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), BODY, TIMESTAMP + 601));
    assert.equal(err.status, 401);
    assert.match(err.message, /auth_timestamp/);
  });

  it('refuses a timestamp 601 s in the future with 401', () => {
    const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), BODY, TIMESTAMP - 601));
    assert.equal(err.status, 401);
  });

  it('refuses the signature in upper case, truncated, padded or with a non-hex digit, with 401 Invalid signature', () => {
    // A digit that is not hex would make the signature decode to fewer bytes than a digest.
    for (const forged of [SIGNATURE.toUpperCase(), SIGNATURE.slice(0, -2), `${SIGNATURE}00`, `${SIGNATURE.slice(0, -1)}g`, '']) {
      const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(forged), BODY, TIMESTAMP));
      assert.equal(err.status, 401, forged);
      assert.match(err.message, /signature/, forged);
    }
  });

  it('refuses a signature one hex digit off with 401 Invalid signature', () => {
    const forged = SIGNATURE.slice(0, -1) + (SIGNATURE.endsWith('c') ? 'd' : 'c');
    const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(forged), BODY, TIMESTAMP));
    assert.equal(err.status, 401);
    assert.equal(err.message, 'Invalid signature');
  });

  it('refuses a body that does not match body_md5', () => {
    const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, exampleQuery(), Buffer.from(BODY.toString().replace('foo', 'bar')), TIMESTAMP));
    assert.equal(err.status, 401);
    assert.match(err.message, /body_md5/);
  });

  it('refuses the example signed for another path', () => {
    const err = refusal(() => verifyPusherSignature(app, 'POST', '/apps/3/batch_events', exampleQuery(), BODY, TIMESTAMP));
    assert.equal(err.status, 401);
    assert.equal(err.message, 'Invalid signature');
  });

  it('refuses another app key with 401', () => {
    const q = exampleQuery();
    q.set('auth_key', 'someone-else');
    const err = refusal(() => verifyPusherSignature(app, 'POST', PATH, q, BODY, TIMESTAMP));
    assert.equal(err.status, 401);
  });

  it('refuses a request without auth_signature', () => {
    const q = exampleQuery();
    q.delete('auth_signature');
    assert.equal(refusal(() => verifyPusherSignature(app, 'POST', PATH, q, BODY, TIMESTAMP)).status, 401);
  });

  it('lower-cases keys, sorts them, and joins values unescaped', () => {
    const q = new URLSearchParams('Zeta=1&info=user_count,subscription_count&ALPHA=a%20b%2Fc&auth_signature=ignored&Mid=x%26y');
    assert.equal(stringToSign('GET', '/apps/1/channels', q), 'GET\n/apps/1/channels\nalpha=a b/c&info=user_count,subscription_count&mid=x&y&zeta=1');
  });
});
