/**
 * The suite's one way to wait for a condition that no event announces (a server-side effect, a
 * state read over HTTP): poll with a deadline, fail with what was awaited and what was last seen.
 */

/** Polls `check` until it returns something other than undefined/false, or throws after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 5000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** Waits until `cond()` holds, checking every 5 ms; resolves with the milliseconds it took. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 3000): Promise<number> {
  const started = Date.now();
  await eventually(cond, what, timeoutMs, 5);
  return Date.now() - started;
}
