import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ApiErrorCode } from '../../src/http/errors.js';
import { NativeCloseCode, NativeErrorCode, NativeRefusalCode } from '../../src/protocol/native/codes.js';
import { PusherCode } from '../../src/protocol/pusher/close-codes.js';
import { StandardCloseCode } from '../../src/transport/seam.js';

/**
 * The README's code tables and the code's tables must list the same codes (both ways), and the
 * same HTTP statuses where the README gives numbers: a code added, removed or renumbered on one
 * side only fails here.
 */
const README = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8').split('\n');

/** The rows (cells, trimmed) of the table whose header row is `header`, found after `heading`. */
function table(heading: string, header: string): string[][] {
  const from = README.indexOf(heading);
  assert.ok(from >= 0, `README has the heading ${heading}`);
  const start = README.indexOf(header, from);
  assert.ok(start >= 0, `README has the table ${header} under ${heading}`);
  const rows: string[][] = [];
  for (let i = start + 2; i < README.length && README[i]?.startsWith('|'); i++) {
    rows.push(README[i].split('|').slice(1, -1).map((cell) => cell.trim()));
  }
  return rows;
}

/** The `UPPER_CASE` codes named in backticks in a cell. */
const codesIn = (cell: string): string[] => [...cell.matchAll(/`([A-Z][A-Z_]+)`/g)].map((m) => m[1]);
const numbersIn = (cell: string): number[] => [...cell.matchAll(/\b(\d{3,4})\b/g)].map((m) => Number(m[1]));
const sorted = <T>(values: Iterable<T>): T[] => [...new Set(values)].sort();

/** For each code, every status the README gives it (rows may repeat a code with another status). */
function statusesByCode(rows: string[][], codeColumn: number, statusColumn: number): Map<string, number[]> {
  const byCode = new Map<string, number[]>();
  for (const row of rows) {
    for (const code of codesIn(row[codeColumn] ?? '')) byCode.set(code, [...(byCode.get(code) ?? []), ...numbersIn(row[statusColumn] ?? '')]);
  }
  return byCode;
}

function assertStatuses(readme: Map<string, number[]>, code: Record<string, { status: readonly number[] }>): void {
  assert.deepEqual(sorted(readme.keys()), sorted(Object.keys(code)), 'the same codes in the README and the code');
  for (const [name, statuses] of readme) assert.deepEqual(sorted(statuses), sorted(code[name]?.status ?? []), `statuses of ${name}`);
}

describe('README code tables match the code', () => {
  it('native handshake refusals', () => {
    assertStatuses(statusesByCode(table('## Native protocol', '| Status | errorCode | When |'), 1, 0), NativeRefusalCode);
  });

  it('native error frames', () => {
    const rows = table('### Errors', '| Code | When |');
    assert.deepEqual(sorted(rows.flatMap((r) => codesIn(r[0] ?? ''))), sorted(Object.keys(NativeErrorCode)));
  });

  it('native close codes', () => {
    const rows = table('### Close codes (native)', '| Code | Reason |');
    // Every 4xxx code the native protocol sends (NativeClose's, and the hooks' 4010 / 4101), and the standard ones.
    const inCode = [...Object.values(NativeCloseCode), ...Object.values(StandardCloseCode)];
    assert.deepEqual(sorted(rows.flatMap((r) => numbersIn(r[0] ?? ''))), sorted(inCode));
  });

  it('native HTTP API error codes', () => {
    assertStatuses(statusesByCode(table('## Native HTTP API', '| errorCode | Status | When |'), 0, 1), ApiErrorCode);
  });

  it('Pusher error and close codes', () => {
    const rows = table('## Pusher error and close codes', '| Code | Sent when | pusher-js does |');
    const inCode = [...Object.values(PusherCode), StandardCloseCode.MessageTooBig, StandardCloseCode.InternalError];
    assert.deepEqual(sorted(rows.flatMap((r) => numbersIn(r[0] ?? ''))), sorted(inCode));
  });
});
