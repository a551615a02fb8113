import { describe, expect, it } from 'vitest';

import { AimdLimiter } from '../src/aimd-limiter.js';

describe('AimdLimiter', () => {
  it('runs at its initial limit from the first task (the executor starts at the host limit)', () => {
    const l = new AimdLimiter({ initial: 8, max: 8 });
    expect(l.limit).toBe(8);
    for (let i = 0; i < 100; i++) l.onSuccess(2, i);
    expect(l.limit).toBe(8);
    expect(l.cuts).toBe(0);
  });

  it('after a cut, grows back by about one per window of clean completions, up to the max', () => {
    const l = new AimdLimiter({ initial: 2, max: 6 });
    expect(l.limit).toBe(2);
    for (let i = 0; i < 2; i++) l.onSuccess(20, i);
    expect(l.limit).toBe(3);
    for (let i = 0; i < 100; i++) l.onSuccess(20, i);
    expect(l.limit).toBe(6);
  });

  it('halves on an overload signal, once per cooldown, never below the minimum', () => {
    const l = new AimdLimiter({ initial: 8, max: 8, cooldownMs: 1000 });
    l.onOverload('too_many_connections', 10_000);
    l.onOverload('too_many_connections', 10_500);
    expect(l.limit).toBe(4);
    expect(l.cuts).toBe(1);
    for (const t of [12_000, 14_000, 16_000, 18_000]) l.onOverload('lock_timeout', t);
    expect(l.limit).toBe(1);
    expect(l.lastSignal).toBe('lock_timeout');
  });

  it('treats a probe well above the host baseline as overload', () => {
    const l = new AimdLimiter({ initial: 10, max: 10, cooldownMs: 0 });
    for (let i = 0; i < 10; i++) l.onSuccess(30, i);
    for (let i = 0; i < 10; i++) l.onSuccess(400, 100 + i);
    expect(l.limit).toBeLessThan(10);
    expect(l.lastSignal).toBe('latency');
  });

  it('does not judge a task without a probe, however long it took', () => {
    const l = new AimdLimiter({ initial: 8, max: 8, cooldownMs: 0 });
    for (let i = 0; i < 10; i++) l.onSuccess(2, i);
    // Slow migration files: the task took seconds, its probe (the journal read) did not.
    for (let i = 0; i < 10; i++) l.onSuccess(2, 100 + i);
    for (let i = 0; i < 10; i++) l.onSuccess(undefined, 200 + i);
    expect(l.limit).toBe(8);
    expect(l.cuts).toBe(0);
  });

  it('ignores a slow first probe (a cold connection or cache) while it learns the baseline', () => {
    const l = new AimdLimiter({ initial: 8, max: 8, cooldownMs: 0 });
    l.onSuccess(900, 0);
    for (let i = 1; i < 20; i++) l.onSuccess(3, i);
    expect(l.limit).toBe(8);
    expect(l.cuts).toBe(0);
  });

  it('ignores probes that are slower by less than the margin (noise at small latencies)', () => {
    const l = new AimdLimiter({ initial: 8, max: 8, cooldownMs: 0 });
    for (let i = 0; i < 10; i++) l.onSuccess(1, i);
    for (let i = 0; i < 50; i++) l.onSuccess(20, 100 + i);
    expect(l.cuts).toBe(0);
  });

  it('respects a lowered ceiling', () => {
    const l = new AimdLimiter({ initial: 5, max: 10 });
    l.setMax(3);
    expect(l.limit).toBe(3);
    for (let i = 0; i < 50; i++) l.onSuccess(10, i);
    expect(l.limit).toBe(3);
  });
});

describe('AimdLimiter on a saturated host', () => {
  it('cuts on a small rise in a fast host when the caller was not late itself', () => {
    const l = new AimdLimiter({ initial: 16, max: 16 });
    for (let i = 0; i < 6; i++) l.onSuccess(1, i, 1);
    // 25 ms on a 1 ms host: under the 50 ms latency margin, but the executor's loop was on time.
    for (let i = 0; i < 20; i++) l.onSuccess(25, 100 + i, 1);
    expect(l.cuts).toBe(1);
    expect(l.lastSignal).toBe('host_saturated');
    expect(l.limit).toBe(8);
  });

  it('leaves the limit alone when its own delay explains the rise, or when it does not say', () => {
    const late = new AimdLimiter({ initial: 16, max: 16 });
    const silent = new AimdLimiter({ initial: 16, max: 16 });
    for (let i = 0; i < 6; i++) {
      late.onSuccess(1, i, 1);
      silent.onSuccess(1, i);
    }
    for (let i = 0; i < 20; i++) {
      late.onSuccess(25, 100 + i, 20);
      silent.onSuccess(25, 100 + i);
    }
    expect(late.cuts).toBe(0);
    expect(silent.cuts).toBe(0);
  });
});
