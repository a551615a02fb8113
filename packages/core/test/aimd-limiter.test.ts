import { describe, expect, it } from 'vitest';

import { AimdLimiter } from '../src/aimd-limiter.js';

describe('AimdLimiter', () => {
  it('starts low and grows by about one per window of clean completions, up to the max', () => {
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

  it('treats latency well above the best seen as overload', () => {
    const l = new AimdLimiter({ initial: 6, max: 10, cooldownMs: 0 });
    for (let i = 0; i < 10; i++) l.onSuccess(30, i);
    const before = l.limit;
    for (let i = 0; i < 10; i++) l.onSuccess(400, 100 + i);
    expect(l.limit).toBeLessThan(before);
    expect(l.lastSignal).toBe('latency');
  });

  it('respects a lowered ceiling', () => {
    const l = new AimdLimiter({ initial: 5, max: 10 });
    l.setMax(3);
    expect(l.limit).toBe(3);
    for (let i = 0; i < 50; i++) l.onSuccess(10, i);
    expect(l.limit).toBe(3);
  });
});
