// Mergeable latency histogram. Workers record locally and ship a sparse copy
// to the main process, so raw samples (hundreds of thousands) never cross IPC.

// Values below EXACT_LIMIT µs get one bucket each; above that every power of
// two is split into SUB_BUCKETS buckets, i.e. < 0.1 % relative error.
const EXACT_LIMIT = 2048;
const SUB_BITS = 10;
const SUB_BUCKETS = 1 << SUB_BITS;
const FIRST_EXP = 11; // log2(EXACT_LIMIT)
const MAX_EXP = 52;
const SIZE = EXACT_LIMIT + (MAX_EXP - FIRST_EXP + 1) * SUB_BUCKETS;

export interface HistogramJSON {
  /** [bucketIndex, count] pairs, only non-empty buckets. */
  buckets: Array<[number, number]>;
  count: number;
  sum: number;
  min: number;
  max: number;
}

function indexOf(value: number): number {
  const v = value < 0 ? 0 : Math.floor(value);
  if (v < EXACT_LIMIT) return v;
  // clz32 instead of log2 below 2^31 µs: this runs once per delivered message in the load
  // generator, where Math.log2 showed as ~20 % of its JavaScript time at 1M messages/s.
  let exp: number;
  let sub: number;
  if (v < 2 ** 31) {
    exp = 31 - Math.clz32(v);
    sub = (v >>> (exp - SUB_BITS)) - SUB_BUCKETS;
  } else {
    exp = Math.min(MAX_EXP, Math.floor(Math.log2(v)));
    sub = Math.floor(v / 2 ** (exp - SUB_BITS)) - SUB_BUCKETS;
  }
  return EXACT_LIMIT + (exp - FIRST_EXP) * SUB_BUCKETS + Math.min(sub, SUB_BUCKETS - 1);
}

function lowerBound(index: number): number {
  if (index < EXACT_LIMIT) return index;
  const rel = index - EXACT_LIMIT;
  const exp = FIRST_EXP + Math.floor(rel / SUB_BUCKETS);
  const sub = rel % SUB_BUCKETS;
  return (SUB_BUCKETS + sub) * 2 ** (exp - SUB_BITS);
}

export class Histogram {
  private counts = new Float64Array(SIZE);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  record(value: number): void {
    this.counts[indexOf(value)]++;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  merge(other: HistogramJSON): void {
    for (const [i, c] of other.buckets) this.counts[i] += c;
    this.count += other.count;
    this.sum += other.sum;
    if (other.count > 0) {
      if (other.min < this.min) this.min = other.min;
      if (other.max > this.max) this.max = other.max;
    }
  }

  /** Nearest-rank percentile, p in [0, 100]. Exact max is kept separately. */
  percentile(p: number): number {
    if (this.count === 0) return NaN;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let i = 0; i < SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(lowerBound(i), this.max);
    }
    return this.max;
  }

  mean(): number {
    return this.count === 0 ? NaN : this.sum / this.count;
  }

  toJSON(): HistogramJSON {
    const buckets: Array<[number, number]> = [];
    for (let i = 0; i < SIZE; i++) {
      const c = this.counts[i];
      if (c !== 0) buckets.push([i, c]);
    }
    return { buckets, count: this.count, sum: this.sum, min: this.count ? this.min : 0, max: this.max };
  }

  static from(json: HistogramJSON): Histogram {
    const h = new Histogram();
    h.merge(json);
    return h;
  }
}

export interface PercentileSummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Summary in milliseconds from a histogram recorded in microseconds. */
export function summarizeUsAsMs(h: Histogram): PercentileSummary {
  const ms = (us: number): number => (Number.isFinite(us) ? Math.round(us) / 1000 : NaN);
  return {
    count: h.count,
    p50: ms(h.percentile(50)),
    p90: ms(h.percentile(90)),
    p99: ms(h.percentile(99)),
    p999: ms(h.percentile(99.9)),
    max: ms(h.max),
    mean: ms(h.mean()),
  };
}
