import { getHeapStatistics } from 'node:v8';

/** The body of GET /usage, in the shape soketi answers it, so its dashboards and scripts keep working. */
export interface Usage {
  readonly memory: { readonly free: number; readonly used: number; readonly total: number; readonly percent: number };
}

/**
 * Process memory in bytes: `used` is resident set + V8 heap + external + array buffers (soketi's
 * sum), `total` the V8 heap limit still available, `free` their difference, `percent` used/total.
 */
export function processUsage(): Usage {
  const { rss, heapTotal, external, arrayBuffers } = process.memoryUsage();
  const total = getHeapStatistics().total_available_size;
  const used = rss + heapTotal + external + arrayBuffers;
  return { memory: { free: total - used, used, total, percent: (used / total) * 100 } };
}
