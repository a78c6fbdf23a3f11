// The tool only ever talks to this machine: it can open tens of thousands of
// sockets and flood endpoints, which must never be pointed at someone else.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface Target {
  host: string;
  port: number;
  /** e.g. "http://127.0.0.1:6001" without trailing slash */
  origin: string;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

export function parseTarget(url: string): Target {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`invalid --url: ${url}`);
  }
  if (u.protocol !== 'http:') throw new Error(`--url must be http:// (got ${u.protocol})`);
  if (!isLoopbackHost(u.hostname)) throw new Error(`refusing non-loopback target ${u.hostname}: this tool only benchmarks local servers`);
  // Resolve "localhost" ourselves so every socket uses the same address family.
  const host = u.hostname === 'localhost' ? '127.0.0.1' : u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 80);
  return { host, port, origin: `http://${host.includes(':') ? `[${host}]` : host}:${port}` };
}

/**
 * Source addresses to spread connections over. Towards one server address the
 * kernel can pick ~28k source ports (ip_local_port_range); 127.0.0.0/8 is all
 * loopback on Linux, so beyond that we bind 127.0.0.1..n. Only when needed:
 * an explicit bind() picks its port much more slowly than connect() does, and
 * cannot reuse ports still in TIME_WAIT from earlier runs.
 */
export function sourceAddresses(targetHost: string, connections: number, requested: number | undefined): string[] {
  if (!targetHost.startsWith('127.')) return [];
  const n = requested ?? (connections > 25_000 ? Math.ceil(connections / 25_000) : 1);
  if (n <= 1) return [];
  return Array.from({ length: Math.min(n, 254) }, (_, i) => `127.0.0.${i + 1}`);
}

/**
 * Above about this many connections from one source address to one server address, Linux's
 * connect() has used up the even half of ip_local_port_range (where it looks first) and scans
 * all of it for every further connect: measured here, ~50 µs per connect below ~12.5k and
 * 0.8–1.8 ms above 15k. Runs that open more measure the kernel, not the server.
 */
export function connectCliff(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi > lo) return Math.floor(((hi - lo + 1) / 2) * 0.85);
  } catch {
    // not Linux
  }
  return 12_000;
}
