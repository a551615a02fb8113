import { describe, expect, it } from 'vitest';

import { durationProblem, parseDuration } from '../src/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['2m', 120_000],
    ['2min', 120_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['0s', 0],
    ['1.5s', 1500],
    ['0.25h', 900_000],
    ['  5s  ', 5000],
    ['5 s', 5000],
    ['1.4ms', 1],
    ['1.6ms', 2],
  ])('parses %j as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    ' ',
    's',
    '5sec',
    '5 seconds',
    '1w',
    '-1s',
    '+1s',
    '5S',
    '1e3',
    '1.s',
    '.5s',
    '5s5',
    '5s ms',
    'soon',
    '1_000',
    '250',
    '0',
    '30',
    '1.5',
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('says how to fix a bare number: the same number with a unit', () => {
    expect(durationProblem('30')).toBe(
      '"30" has no unit: write 30s for seconds or 30ms for milliseconds (units: ms, s, m or min, h, d)',
    );
    expect(durationProblem('soon')).toMatch(/not a duration: write a number and a unit, such as 500ms, 30s/);
  });
});
