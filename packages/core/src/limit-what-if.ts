import type { HostWhatIf } from '@sluice/contracts';

/** One tenant's work on a host: connect to unlock, in ms on one clock. */
export interface WorkInterval {
  startMs: number;
  endMs: number;
}

/** Throughput at one concurrency level (Little's law over the tenants that ran at about that level). */
export interface ConcurrencyPoint {
  concurrency: number;
  /** Tenants per second. */
  throughput: number;
  tenants: number;
}

/** The fewest tenants that make a level a point, and the fewest levels that make a USL fit. */
const MIN_TENANTS_PER_POINT = 3;
const MIN_POINTS_FOR_FIT = 3;
/** Share of the best throughput a limit must reach to count as the peak. */
const KNEE = 0.95;

const range = (cap: number): number[] => Array.from({ length: Math.max(1, Math.floor(cap)) }, (_, i) => i + 1);

/**
 * Each tenant's mean concurrency over its own interval (the host's tenants in flight, it included,
 * averaged over its life), from the step function of all intervals. O(n log n).
 */
export function concurrencyOfEach(intervals: readonly WorkInterval[]): number[] {
  const events: Array<[number, number]> = [];
  for (const i of intervals) {
    events.push([i.startMs, 1], [Math.max(i.startMs, i.endMs), -1]);
  }
  // Ends before starts at the same instant: a tenant that ends does not overlap one that begins.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const times: number[] = [];
  const cumulative: number[] = []; // ∫ in-flight dt from the first event to times[k]
  const level: number[] = []; // in flight just after times[k]
  let inFlight = 0;
  let area = 0;
  let last = events[0]?.[0] ?? 0;
  for (const [t, delta] of events) {
    area += inFlight * (t - last);
    last = t;
    inFlight += delta;
    if (times.length > 0 && times[times.length - 1] === t) {
      cumulative[cumulative.length - 1] = area;
      level[level.length - 1] = inFlight;
    } else {
      times.push(t);
      cumulative.push(area);
      level.push(inFlight);
    }
  }
  const integralAt = (t: number): number => {
    // The last event at or before t.
    let lo = 0;
    let hi = times.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (times[mid]! <= t) lo = mid;
      else hi = mid - 1;
    }
    return cumulative[lo]! + level[lo]! * (t - times[lo]!);
  };
  return intervals.map((i) => {
    const span = i.endMs - i.startMs;
    if (span <= 0) return 1;
    return Math.max(1, (integralAt(i.endMs) - integralAt(i.startMs)) / span);
  });
}

/** Throughput per concurrency level: tenants grouped by their mean concurrency, X = N / R (Little). */
export function throughputByConcurrency(intervals: readonly WorkInterval[]): ConcurrencyPoint[] {
  const levels = concurrencyOfEach(intervals);
  const buckets = new Map<number, { n: number; r: number; count: number }>();
  intervals.forEach((interval, k) => {
    const n = levels[k]!;
    const key = levelKey(n);
    const b = buckets.get(key) ?? { n: 0, r: 0, count: 0 };
    b.n += n;
    b.r += Math.max(0.01, interval.endMs - interval.startMs);
    b.count += 1;
    buckets.set(key, b);
  });
  return [...buckets.values()]
    .filter((b) => b.count >= MIN_TENANTS_PER_POINT)
    .map((b) => ({
      concurrency: round(b.n / b.count),
      throughput: round(b.n / b.count / (b.r / b.count / 1_000)),
      tenants: b.count,
    }))
    .sort((a, b) => a.concurrency - b.concurrency);
}

/**
 * Throughput per concurrency level over time windows: the host's busy span cut into windows at
 * least twice as long as a typical tenant, each giving its mean tenants in flight and, by Little's
 * law, its throughput (that over the mean duration of the tenants in it), grouped by level. Catches what per-tenant means blur: the drain at the
 * end of a run (levels falling to 1) and the levels an adaptive limit passed through.
 */
export function throughputByWindow(intervals: readonly WorkInterval[]): ConcurrencyPoint[] {
  if (intervals.length === 0) return [];
  const first = Math.min(...intervals.map((i) => i.startMs));
  const last = Math.max(...intervals.map((i) => i.endMs));
  const durations = intervals.map((i) => Math.max(0, i.endMs - i.startMs)).sort((a, b) => a - b);
  const median = durations[Math.floor(durations.length / 2)]!;
  const width = Math.max(2 * median, (last - first) / 40, 1);
  const count = Math.max(1, Math.ceil((last - first) / width));
  const area = new Array<number>(count).fill(0);
  // Σ overlap × duration: the window's mean duration weighted by how long each tenant was in it.
  const weighted = new Array<number>(count).fill(0);
  const done = new Array<number>(count).fill(0);
  for (const i of intervals) {
    const end = Math.max(i.startMs, i.endMs);
    done[Math.min(count - 1, Math.floor((end - first) / width))]! += 1;
    for (let w = Math.floor((i.startMs - first) / width); w < count && first + w * width < end; w++) {
      const lo = Math.max(i.startMs, first + w * width);
      const hi = Math.min(end, first + (w + 1) * width);
      if (hi > lo) {
        area[w]! += hi - lo;
        weighted[w]! += (hi - lo) * (end - i.startMs);
      }
    }
  }
  // Little's law per window (X = N / R): counting completions instead would credit a draining
  // window with work that started at a higher level.
  const buckets = new Map<number, { n: number; x: number; weight: number }>();
  for (let w = 0; w < count; w++) {
    const n = area[w]! / width;
    if (n < 0.5 || done[w]! === 0 || area[w]! === 0) continue;
    const meanDuration = Math.max(0.01, weighted[w]! / area[w]!);
    const key = levelKey(n);
    const b = buckets.get(key) ?? { n: 0, x: 0, weight: 0 };
    b.n += n * done[w]!;
    b.x += (n / meanDuration) * 1_000 * done[w]!;
    b.weight += done[w]!;
    buckets.set(key, b);
  }
  return [...buckets.values()]
    .filter((b) => b.weight >= MIN_TENANTS_PER_POINT)
    .map((b) => ({ concurrency: round(b.n / b.weight), throughput: round(b.x / b.weight), tenants: b.weight }))
    .sort((a, b) => a.concurrency - b.concurrency);
}

/** Whole levels up to 12, then coarser steps (an eighth of the level) so each holds tenants. */
function levelKey(n: number): number {
  const step = n <= 12 ? 1 : Math.max(1, Math.round(n / 8));
  return Math.round(n / step) * step;
}

/**
 * The Universal Scalability Law fitted to the points: X(N) = λN / (1 + σ(N−1) + κN(N−1)), as the
 * linear least squares of N/X = a + b(N−1) + cN(N−1) weighted by tenants (λ = 1/a, σ = b/a,
 * κ = c/a), with σ and κ kept non-negative. Undefined with too few distinct levels.
 */
export function fitUsl(
  points: readonly ConcurrencyPoint[],
): { lambda: number; sigma: number; kappa: number } | undefined {
  if (points.length < MIN_POINTS_FOR_FIT) return undefined;
  const ns = points.map((p) => p.concurrency);
  if (Math.max(...ns) < 1.5 * Math.min(...ns)) return undefined;
  const rows = points.map((p) => ({
    x: [1, p.concurrency - 1, p.concurrency * (p.concurrency - 1)],
    y: p.concurrency / Math.max(1e-9, p.throughput),
    w: p.tenants,
  }));
  // The full model, and the models with σ or κ (or both) held at 0: the valid one that fits best.
  let best: { coef: number[]; residual: number } | undefined;
  for (const keep of [[0], [0, 1], [0, 2], [0, 1, 2]]) {
    const beta = weightedLeastSquares(
      rows.map((r) => ({ x: keep.map((k) => r.x[k]!), y: r.y, w: r.w })),
      keep.length,
    );
    if (!beta || beta.some((v, i) => (keep[i] === 0 ? v <= 0 : v < -1e-12))) continue;
    const coef = [0, 0, 0];
    keep.forEach((k, i) => (coef[k] = Math.max(0, beta[i]!)));
    const residual = rows.reduce((sum, r) => {
      const e = r.y - (coef[0]! * r.x[0]! + coef[1]! * r.x[1]! + coef[2]! * r.x[2]!);
      return sum + r.w * e * e;
    }, 0);
    // Simplest first: a model with more coefficients must fit strictly better to win.
    if (!best || residual < best.residual * (1 - 1e-6)) best = { coef, residual };
  }
  if (!best) return undefined;
  const [a, b, c] = best.coef as [number, number, number];
  return { lambda: 1 / a, sigma: b / a, kappa: c / a };
}

/** Throughput the USL predicts at concurrency n. */
export function uslThroughput(model: { lambda: number; sigma: number; kappa: number }, n: number): number {
  return (model.lambda * n) / (1 + model.sigma * (n - 1) + model.kappa * n * (n - 1));
}

export interface WhatIfInput {
  host: string;
  intervals: readonly WorkInterval[];
  /** The run's wall time. */
  wallMs: number;
  /** No limit above this helps (the executors' slots over all replicas); 0 or none: no cap. */
  slotCap?: number;
  /**
   * The host is saturated (its latency far above baseline): no limit above the highest level seen
   * is advised, whatever a curve fitted to noisy levels says beyond them.
   */
  saturated?: boolean;
  /**
   * Each interval stands for this many tenants (a huge host's intervals are thinned to every
   * n-th tenant, evenly over the run): levels and throughputs are scaled back up by it.
   */
  scale?: number;
}

/**
 * What a different limit would do to one host: its points (per tenant and per time window), the
 * USL when it fits, the limit at which throughput peaks, and the run's wall time predicted with the
 * host at that limit. A limit L is taken to keep the same share of itself in flight as this run
 * kept of its highest level (ramp, drain and cuts included); the prediction scales the host's busy
 * span by the model's throughput ratio (at the mean concurrency seen, and at that share of L), so
 * what the model gets wrong in absolute terms cancels, and keeps the rest of the run's time
 * (planning, start-up). The peak is the smallest limit within 5% of the best predicted throughput,
 * searched from a little below the lowest level seen (no extrapolation far below the data) to
 * twice the highest with a USL fit, 1.5 times without.
 */
export function hostWhatIf(input: WhatIfInput): HostWhatIf | undefined {
  const { intervals } = input;
  const scale = Math.max(1, input.scale ?? 1);
  if (intervals.length < MIN_TENANTS_PER_POINT) return undefined;
  const scaled = (p: ConcurrencyPoint): ConcurrencyPoint =>
    scale === 1
      ? p
      : { concurrency: round(p.concurrency * scale), throughput: round(p.throughput * scale), tenants: p.tenants };
  // Per-tenant points first; windows only add the levels below them (the drain), where per-tenant
  // means never reach: a window that straddles a change of level is the rougher estimate.
  const perTenant = throughputByConcurrency(intervals);
  const floor = perTenant[0]?.concurrency ?? Number.POSITIVE_INFINITY;
  const points = [...throughputByWindow(intervals).filter((p) => p.concurrency < 0.75 * floor), ...perTenant]
    .map(scaled)
    .sort((a, b) => a.concurrency - b.concurrency);
  if (points.length === 0) return undefined;
  const firstStart = Math.min(...intervals.map((i) => i.startMs));
  const lastEnd = Math.max(...intervals.map((i) => i.endMs));
  const span = Math.max(1, lastEnd - firstStart);
  const busy = intervals.reduce((sum, i) => sum + Math.max(0, i.endMs - i.startMs), 0);
  const observedConcurrency = (busy / span) * scale;
  const highest = Math.ceil(Math.max(...concurrencyOfEach(intervals)) * scale);
  const lowestSeen = Math.max(1, points[0]!.concurrency);
  const usl = fitUsl(points);
  // A fitted curve may be read up to twice the highest level seen; a straight line through a
  // couple of levels only half as far again (latency rarely holds for long as a limit doubles).
  const reach = usl ? 2 : 1.5;
  const cap = Math.max(
    1,
    Math.min(
      input.slotCap || Number.POSITIVE_INFINITY,
      intervals.length * scale,
      Math.ceil((input.saturated ? 1 : reach) * highest),
    ),
  );

  const throughputAt = usl ? (n: number) => uslThroughput(usl, n) : (n: number) => interpolate(points, n);
  // The share of its limit the host kept in flight (ramp, drain, cuts), assumed the same at another.
  const utilisation = Math.min(1, observedConcurrency / Math.max(1, highest));
  const inFlightAt = (limit: number): number => Math.max(1, utilisation * limit);
  const lowestLimit = Math.max(1, Math.min(cap, Math.floor((0.75 * lowestSeen) / utilisation)));
  const candidates = range(cap).filter((l) => l >= lowestLimit);
  const best = Math.max(...candidates.map((l) => throughputAt(inFlightAt(l))));
  const peakLimit = candidates.find((l) => throughputAt(inFlightAt(l)) >= KNEE * best) ?? cap;
  const stillRising = peakLimit > highest;
  const ratio = throughputAt(observedConcurrency) / Math.max(1e-9, throughputAt(inFlightAt(peakLimit)));
  const predictedWallMs = Math.max(0, input.wallMs - span) + span * ratio;
  return {
    host: input.host,
    model: usl ? 'usl' : 'observed',
    points,
    ...(usl ? { sigma: round(usl.sigma), kappa: round(usl.kappa) } : {}),
    observedConcurrency: round(observedConcurrency),
    peakLimit,
    stillRising,
    peakThroughput: round(throughputAt(inFlightAt(peakLimit))),
    wallMs: Math.round(input.wallMs),
    predictedWallMs: Math.round(predictedWallMs),
  };
}

/**
 * Throughput between the points seen; below the lowest and, while throughput still rose up to the
 * highest, above it too, Little's law with the duration seen there (latency assumed to hold: the
 * optimistic reading, flagged `stillRising`); flat above a curve that had already turned.
 */
function interpolate(points: readonly ConcurrencyPoint[], n: number): number {
  const first = points[0]!;
  if (n <= first.concurrency) return (first.throughput * n) / first.concurrency;
  for (let k = 1; k < points.length; k++) {
    const a = points[k - 1]!;
    const b = points[k]!;
    if (n <= b.concurrency)
      return a.throughput + ((b.throughput - a.throughput) * (n - a.concurrency)) / (b.concurrency - a.concurrency);
  }
  const top = points[points.length - 1]!;
  const rising = points.every((p) => p.throughput <= top.throughput);
  return rising ? (top.throughput * n) / top.concurrency : top.throughput;
}

/** Solves the weighted normal equations (size ≤ 3) by Gaussian elimination; undefined when singular. */
function weightedLeastSquares(
  rows: ReadonlyArray<{ x: number[]; y: number; w: number }>,
  size: number,
): number[] | undefined {
  const m = Array.from({ length: size }, () => new Array<number>(size + 1).fill(0));
  for (const r of rows) {
    for (let i = 0; i < size; i++) {
      for (let j = 0; j < size; j++) m[i]![j]! += r.w * r.x[i]! * r.x[j]!;
      m[i]![size]! += r.w * r.x[i]! * r.y;
    }
  }
  for (let col = 0; col < size; col++) {
    let pivot = col;
    for (let r = col + 1; r < size; r++) if (Math.abs(m[r]![col]!) > Math.abs(m[pivot]![col]!)) pivot = r;
    if (Math.abs(m[pivot]![col]!) < 1e-12) return undefined;
    [m[col], m[pivot]] = [m[pivot]!, m[col]!];
    for (let r = 0; r < size; r++) {
      if (r === col) continue;
      const f = m[r]![col]! / m[col]![col]!;
      for (let c = col; c <= size; c++) m[r]![c]! -= f * m[col]![c]!;
    }
  }
  return m.map((row, i) => row[size]! / row[i]!);
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
