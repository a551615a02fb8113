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
