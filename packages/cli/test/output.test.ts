import type { RunCompletedEvent } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { formatCompleted, formatDuration, formatProgress } from '../src/output.js';

const completed: RunCompletedEvent = {
  runId: 'r1',
  status: 'partial',
  target: 'latest',
  targetVersion: 6,
  dryRun: false,
  counts: { total: 3, migrated: 1, upToDate: 1, pending: 0, failed: 1, skipped: 0 },
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:02.500Z',
  durationMs: 2500,
  failures: [{ tenantId: 't3', error: 'version 4: relation "x" does not exist', code: 'sql_error' }],
  failuresTruncated: false,
};

describe('CLI output', () => {
  it('formats durations for people', () => {
    expect(formatDuration(340)).toBe('340 ms');
    expect(formatDuration(2500)).toBe('2.5 s');
    expect(formatDuration(125_000)).toBe('2m05s');
  });

  it('prints a completed run with its failures', () => {
    const text = formatCompleted(completed).join('\n');
    expect(text).toContain('run r1: PARTIAL');
    expect(text).toContain('1 migrated, 1 up to date, 1 failed, 0 skipped (of 3)');
    expect(text).toContain('t3: [sql_error] version 4');
  });

  it('draws a bar on a terminal and a plain line elsewhere', () => {
    const p = { runId: 'r1', status: 'running' as const, counts: completed.counts, done: 2, ratePerSec: 4, etaMs: 250, at: '' };
    expect(formatProgress(p, true)).toMatch(/^\[#{20}-{10}\] {2}67%/);
    expect(formatProgress(p, false)).toBe('progress r1: 2/3 tenants  4.0/s  eta 250 ms  failed 1');
  });
});
