import { describe, expect, it } from 'vitest';

import {
  applyControl,
  controlRefusal,
  gateDecision,
  initialControlState,
  type RunControlEvent,
  RunControlEventSchema,
} from '../src/control.js';
import {
  LEDGER_BATCH_MAX,
  ledgerEntryMsgId,
  plannedTasksOf,
  TaskLedgerEntrySchema,
  tenantLedgerEntries,
} from '../src/ledger.js';
import { MigrateRequestSchema } from '../src/request.js';
import { type TenantTask, TenantTaskSchema } from '../src/task.js';
import { tenantTask } from './tenant-task.js';

const at = '2026-01-01T00:00:00.000Z';
/** A task of the ledger tests, parsed as the ledger's schema reads it. */
const ledgerTask = (tenantId: string, patch: Partial<TenantTask> = {}): TenantTask =>
  TenantTaskSchema.parse(tenantTask(tenantId, patch));
const event = (action: RunControlEvent['action'], reason?: string): RunControlEvent => ({
  runId: 'r1',
  action,
  at,
  ...(reason ? { reason } : {}),
});

describe('rollout in a request', () => {
  it('accepts canary counts and thresholds', () => {
    expect(
      MigrateRequestSchema.parse({
        runId: 'r',
        target: 'latest',
        rollout: { canary: 5, maxFailures: 3, maxFailureRate: 0.05 },
      }).rollout,
    ).toEqual({ canary: 5, maxFailures: 3, maxFailureRate: 0.05 });
    expect(MigrateRequestSchema.safeParse({ runId: 'r', target: 'latest', rollout: {} }).success).toBe(true);
  });

  it.each([
    ['a negative canary count', { canary: -1 }],
    ['a fractional canary count', { canary: 1.5 }],
    ['a rate over 1', { maxFailureRate: 1.5 }],
    ['an unknown field', { canaries: 3 }],
  ])('refuses %s', (_label, rollout) => {
    expect(MigrateRequestSchema.safeParse({ runId: 'r', target: 'latest', rollout }).success).toBe(false);
  });
});

describe('run control', () => {
  it('folds pause, resume, promote and cancel; what does not apply changes nothing', () => {
    let s = initialControlState('r1', { canary: 2 }, 1, at);
    expect(s).toMatchObject({ state: 'running', stage: 'canary' });
    expect(applyControl(s, event('resume'), 2)).toBe(s);
    s = applyControl(s, event('pause', 'maintenance'), 3);
    expect(s).toMatchObject({ state: 'paused', seq: 3, note: { action: 'pause', reason: 'maintenance' } });
    expect(controlRefusal(s, 'pause')).toBe('run r1 is already paused');
    s = applyControl(s, event('promote'), 4);
    expect(s).toMatchObject({ state: 'paused', stage: 'fleet' });
    s = applyControl(s, event('resume'), 5);
    expect(s.state).toBe('running');
    expect(s.note).toBeUndefined();
    s = applyControl(s, event('cancel', 'wrong target'), 6);
    expect(s).toMatchObject({ state: 'cancelling', stoppedBy: { action: 'cancel', reason: 'wrong target' } });
    expect(applyControl(s, event('resume'), 7)).toBe(s);
    expect(controlRefusal(s, 'resume')).toBe('run r1 is being cancelled');
    expect(controlRefusal({ ...s, final: 'cancelled' }, 'pause')).toBe('run r1 has already completed (cancelled)');
  });

  it('tells executors what to do with a task', () => {
    const running = initialControlState('r1', undefined, 1, at);
    expect(gateDecision(undefined, {})).toEqual({ action: 'proceed' });
    expect(gateDecision(undefined, { stage: 'fleet' })).toEqual({ action: 'park', reason: 'canary' });
    expect(gateDecision(running, { stage: 'fleet' })).toEqual({ action: 'proceed' });
    expect(gateDecision({ ...running, stage: 'canary' }, { stage: 'canary' })).toEqual({ action: 'proceed' });
    expect(gateDecision({ ...running, state: 'paused' }, {})).toEqual({ action: 'park', reason: 'paused' });
    const stopped = applyControl(running, event('stop', 'canary c1 failed'), 2);
    expect(gateDecision(stopped, {})).toEqual({
      action: 'skip',
      code: 'rollout_stopped',
      reason: 'run stopped by its rollout: canary c1 failed',
    });
    expect(gateDecision(applyControl(running, event('cancel'), 2), {})).toEqual({
      action: 'skip',
      code: 'cancelled',
      reason: 'run cancelled',
    });
    expect(gateDecision({ ...running, final: 'succeeded' }, {})).toMatchObject({
      action: 'skip',
      code: 'run_completed',
    });
  });

  it('validates control events and ledger entries', () => {
    expect(RunControlEventSchema.safeParse({ runId: 'r1', action: 'explode', at }).success).toBe(false);
    expect(RunControlEventSchema.safeParse({ runId: 'r 1', action: 'pause', at }).success).toBe(false);
    const task = ledgerTask('t', { stage: 'fleet' });
    expect(task.stage).toBe('fleet');
    expect(TaskLedgerEntrySchema.safeParse({ kind: 'parked', task, taskSeq: 3, reason: 'paused', at }).success).toBe(
      true,
    );
    expect(TaskLedgerEntrySchema.safeParse({ kind: 'parked', task, taskSeq: 0, reason: 'paused', at }).success).toBe(
      false,
    );
    expect(
      TaskLedgerEntrySchema.safeParse({
        kind: 'republished',
        tenantId: 't',
        taskSeq: 4,
        supersedes: 3,
        cause: 'stolen',
        at,
      }).success,
    ).toBe(false);
  });
});

describe('task ledger batches', () => {
  it('holds 1 to LEDGER_BATCH_MAX planned tasks, read back as one planned entry per tenant', () => {
    const batch = {
      kind: 'plannedBatch',
      tasks: [
        { task: ledgerTask('a'), taskSeq: 4 },
        { task: ledgerTask('b'), taskSeq: 5 },
      ],
    };
    const parsed = TaskLedgerEntrySchema.parse(batch);
    expect(plannedTasksOf(parsed).map((p) => p.task.tenantId)).toEqual(['a', 'b']);
    expect(tenantLedgerEntries(parsed)).toEqual([
      { kind: 'planned', task: ledgerTask('a'), taskSeq: 4 },
      { kind: 'planned', task: ledgerTask('b'), taskSeq: 5 },
    ]);
    expect(ledgerEntryMsgId('r1', parsed)).toBe('r1:plannedBatch:4:2');
    expect(TaskLedgerEntrySchema.safeParse({ kind: 'plannedBatch', tasks: [] }).success).toBe(false);
    const tooMany = Array.from({ length: LEDGER_BATCH_MAX + 1 }, (_, i) => ({
      task: ledgerTask(`t${i}`),
      taskSeq: i + 1,
    }));
    expect(TaskLedgerEntrySchema.safeParse({ kind: 'plannedBatch', tasks: tooMany }).success).toBe(false);
  });

  it('gives each tenant of a batch its own republished entry id (they share the entry they replace)', () => {
    const entry = (tenantId: string) =>
      ({ kind: 'republished', tenantId, taskSeq: 9, supersedes: 3, cause: 'lost', at }) as const;
    expect(ledgerEntryMsgId('r1', entry('a'))).not.toBe(ledgerEntryMsgId('r1', entry('b')));
  });
});
