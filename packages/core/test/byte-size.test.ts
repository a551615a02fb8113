import { describe, expect, it } from 'vitest';

import { formatByteSize, parseByteSize } from '../src/byte-size.js';
import { envReader } from '../src/env.js';

describe('parseByteSize', () => {
  it.each([
    ['4096B', 4096],
    ['64KiB', 65_536],
    ['512MiB', 536_870_912],
    ['20GB', 20_000_000_000],
    ['1.5GiB', 1_610_612_736],
    ['2 TiB', 2 * 2 ** 40],
    ['10kb', 10_000],
    ['unlimited', -1],
    [' Unlimited ', -1],
  ])('parses %j as %i bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each(['', '20', '-1GB', '1e3MB', '5 bytes', 'GB', '1.GB', 'lots'])('refuses %j', (text) => {
    expect(parseByteSize(text)).toBeUndefined();
  });

  it('formats sizes for messages', () => {
    expect(formatByteSize(-1)).toBe('unlimited');
    expect(formatByteSize(512)).toBe('512 B');
    expect(formatByteSize(65_536)).toBe('64 KiB');
    expect(formatByteSize(1_610_612_736)).toBe('1.5 GiB');
  });

  it('reads a setting, naming it when it is wrong', () => {
    const e = envReader({ SLUICE_STREAM_MAX_BYTES: '20', OK: '1GiB' });
    expect(e.bytes('OK', -1)).toBe(2 ** 30);
    expect(e.bytes('MISSING', -1)).toBe(-1);
    expect(() => e.bytes('SLUICE_STREAM_MAX_BYTES', -1)).toThrow(/SLUICE_STREAM_MAX_BYTES must be a size with a unit/);
  });
});
