import { initialControlState } from '@sluice/contracts';
import { lostRunEvent } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';

import { isLostRun, shownStatus, unknownRunMessage } from '../src/commands/status.js';
import { formatLostRun, formatVanishedRun } from '../src/output.js';
import type { RunView } from '../src/run-reader.js';

const lost = lostRunEvent('r1');
const view = (extra: Partial<RunView>): RunView => ({
  runId: 'r1',
  status: 'planning',
  control: initialControlState('r1', undefined, 0, '2026-11-30T03:45:22.551Z'),
  controls: [],
  ...extra,
});

describe('sluice status: a run lost with the JetStream store', () => {
  it('says LOST, what was known, and the command that recovers it', () => {
    expect(isLostRun(view({ lost }))).toBe(true);
    expect(shownStatus(view({ lost }))).toBe('lost');
    expect(formatLostRun(lost)).toEqual([
      'run r1: LOST (the JetStream store was lost while it was running)',
      '  lost      detected 2026-11-30T03:45:24.269Z; 8 of 40 tenants had settled, target version 3',
      '  why       its tasks, outcomes and events went with the store; the tenant journals hold what was applied',
      "  recover   sluice runs recover r1   (counts every tenant from its journal and publishes the run's completed event)",
    ]);
  });

  it('is no longer lost once recovered, or once the runId was requested again after the loss', () => {
    const accepted = {
      runId: 'r1',
      target: 'latest' as const,
      targetVersion: 3,
      digest: 'a'.repeat(64),
      dryRun: false,
      acceptedAt: '2026-11-30T04:00:00.000Z',
    };
    expect(isLostRun(view({ lost, accepted }))).toBe(false);
    expect(shownStatus(view({ lost, accepted }))).toBe('planning');
    expect(isLostRun(view({ lost, accepted: { ...accepted, acceptedAt: '2026-11-30T03:00:00.000Z' } }))).toBe(true);
    expect(isLostRun(view({}))).toBe(false);
  });

  it('names the recover command for a run it has no record of', () => {
    expect(unknownRunMessage('r9')).toContain('sluice runs recover r9');
    expect(formatVanishedRun('r9')).toEqual([
      'run r9: LOST (the JetStream store was lost while it was in flight; no reporter reported it)',
      '  why       its tasks, outcomes and events went with the store; the tenant journals hold what was applied',
      "  recover   sluice runs recover r9   (counts every tenant from its journal and publishes the run's completed event)",
    ]);
  });
});
