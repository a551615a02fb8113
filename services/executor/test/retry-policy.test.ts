import { describe, expect, it } from 'vitest';

import { retryDelayMs } from '../src/retry-policy.js';

describe('retryDelayMs', () => {
  it('doubles the ceiling per attempt, with jitter in its upper half', () => {
    expect(retryDelayMs(1, 1000, 60_000, () => 0)).toBe(500);
    expect(retryDelayMs(1, 1000, 60_000, () => 1)).toBe(1000);
    expect(retryDelayMs(3, 1000, 60_000, () => 0)).toBe(2000);
    expect(retryDelayMs(3, 1000, 60_000, () => 1)).toBe(4000);
  });
  it('never exceeds the maximum', () => {
    expect(retryDelayMs(40, 1000, 60_000, () => 1)).toBe(60_000);
  });
});
