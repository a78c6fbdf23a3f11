#!/usr/bin/env node
/**
 * The container's HEALTHCHECK: exits 0 when the server configured by the same environment (and
 * SWITCHBOARD_CONFIG file) answers GET /up with 200 on this host, 1 otherwise. A probe of its own
 * because the image has no curl, and because the port and scheme come from the configuration.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { loadConfig } from '../config/load.js';

const TIMEOUT_MS = 2_000;

const config = loadConfig({ env: process.env });
const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
const answered = (res: IncomingMessage): void => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
};
const options = { host, port: config.port, path: '/up', timeout: TIMEOUT_MS };
const req = config.tlsCert
  ? // The certificate names the public host, not the loopback address probed; this checks liveness, not identity.
    httpsRequest({ ...options, rejectUnauthorized: false }, answered)
  : httpRequest(options, answered);
req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
req.on('error', (err) => {
  process.stderr.write(`healthcheck: ${host}:${config.port}/up: ${err.message}\n`);
  process.exit(1);
});
req.end();
