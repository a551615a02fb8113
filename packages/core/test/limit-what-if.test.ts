import { describe, expect, it } from 'vitest';

import {
  concurrencyOfEach,
  fitUsl,
  hostWhatIf,
  throughputByConcurrency,
  uslThroughput,
  type WorkInterval,
} from '../src/limit-what-if.js';

/**
 * Tenants run `level` at a time, back to back, each taking `serviceMs(level)`: what a host whose
 * service time depends on its concurrency produces, a level after another.
 */
function rampOf(levels: number[], perLevel: number, serviceMs: (n: number) => number): WorkInterval[] {
  const out: WorkInterval[] = [];
  let t = 0;
  for (const n of levels) {
    const r = serviceMs(n);
    for (let wave = 0; wave < perLevel; wave++) {
      for (let k = 0; k < n; k++) out.push({ startMs: t, endMs: t + r });
      t += r;
    }
  }
  return out;
}

describe('what a different limit would do', () => {
  it("gives each tenant the host's mean concurrency over its own life", () => {
    const levels = concurrencyOfEach([
      { startMs: 0, endMs: 100 },
      { startMs: 0, endMs: 50 },
      { startMs: 200, endMs: 300 },
    ]);
    expect(levels).toEqual([1.5, 2, 1]);
  });

  it("recovers Little's law throughput per level and a USL that peaks where the host does", () => {
    // A host that serves 1 tenant in 10 ms and slows with contention and coherency.
    const model = { lambda: 100, sigma: 0.05, kappa: 0.01 };
    const serviceMs = (n: number) => (n / uslThroughput(model, n)) * 1_000;
    const intervals = rampOf([1, 2, 4, 8, 16, 32], 5, serviceMs);
    const points = throughputByConcurrency(intervals);
    expect(points.map((p) => p.concurrency)).toEqual([1, 2, 4, 8, 16, 32]);
    for (const p of points) expect(p.throughput).toBeCloseTo(uslThroughput(model, p.concurrency), 3);
    const fit = fitUsl(points)!;
    expect(fit.sigma).toBeCloseTo(0.05, 3);
    expect(fit.kappa).toBeCloseTo(0.01, 3);

    // The run's wall time is an input of the model, not a clock reading: the prediction is compared with it.
    const ranFor = 10_000;
    const w = hostWhatIf({ host: 'db:1', intervals, wallMs: ranFor })!;
    expect(w.model).toBe('usl');
    // The true peak is at sqrt((1 - σ) / κ) ≈ 9.7 in flight; the advised limit reaches 95% of it.
    const peak = uslThroughput(model, Math.sqrt((1 - model.sigma) / model.kappa));
    expect(w.peakThroughput).toBeGreaterThanOrEqual(0.94 * peak);
    expect(w.peakThroughput).toBeLessThanOrEqual(peak * 1.01);
    expect(w.stillRising).toBe(false);
    // The ramp spent most of its time above the peak: the advised limit predicts a shorter run.
    expect(w.predictedWallMs).toBeLessThan(ranFor);
  });

  it('a host that scales linearly is still rising: the advice is above the highest level seen', () => {
    const intervals = rampOf([1, 2, 4], 5, () => 100);
    const ranFor = 5_000;
    const w = hostWhatIf({ host: 'db:1', intervals, wallMs: ranFor })!;
    expect(w.stillRising).toBe(true);
    expect(w.peakLimit).toBeGreaterThan(4);
    // More in flight, same service time: a shorter run.
    expect(w.predictedWallMs).toBeLessThan(ranFor);
  });

  it('a saturated host (flat throughput) peaks low, and a lower limit predicts no slower run', () => {
    // Throughput 50/s whatever the level: service time grows with concurrency.
    const intervals = rampOf([32, 16, 8, 4], 4, (n) => n * 20);
    const ranFor = 20_000;
    const w = hostWhatIf({ host: 'db:1', intervals, wallMs: ranFor })!;
    expect(w.peakLimit).toBeLessThan(32);
    expect(w.stillRising).toBe(false);
    expect(w.predictedWallMs).toBeLessThanOrEqual(ranFor * 1.05);
  });

  it('needs a few tenants', () => {
    expect(hostWhatIf({ host: 'db:1', intervals: [{ startMs: 0, endMs: 1 }], wallMs: 1 })).toBeUndefined();
  });
});

describe('what-if on a thinned sample', () => {
  it('scales levels and throughput back up by the stride', () => {
    const all = rampOf([4, 8], 10, () => 100);
    const every2nd = all.filter((_, i) => i % 2 === 0);
    const full = hostWhatIf({ host: 'db:1', intervals: all, wallMs: 2_000 })!;
    const thinned = hostWhatIf({ host: 'db:1', intervals: every2nd, wallMs: 2_000, scale: 2 })!;
    expect(thinned.observedConcurrency).toBeCloseTo(full.observedConcurrency, 0);
    expect(Math.max(...thinned.points.map((p) => p.throughput))).toBeCloseTo(
      Math.max(...full.points.map((p) => p.throughput)),
      -1,
    );
  });
});
