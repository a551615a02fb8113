import { AckPolicy, type Bus, decodeJson, openRunControlStore, readSubject, type RunControlStore } from '@sluice/bus';
import {
  initialControlState,
  LEDGER_STREAM,
  ledgerSubject,
  outcomeSubject,
  type RunControlState,
  STREAMS,
  type TaskLedgerEntry,
  type TenantOutcome,
  type TenantTask,
} from '@sluice/contracts';
import { createMigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { createLogger } from '@sluice/telemetry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createDelivery } from '../src/delivery.js';
import { createRunGate, type RunGate } from '../src/run-gate.js';
import { startTaskBus, type TaskBusFixture, upToDate } from './support.js';

const parser = await loadSqlParser();

const logger = createLogger({ service: 'run-gate-test', level: 'silent' });
const at = new Date().toISOString();
const set = createMigrationSet([{ file: '0001_a.sql', sql: 'SELECT 1;' }], parser);

const task = (runId: string, tenantId: string, stage?: 'canary' | 'fleet'): TenantTask => ({
  runId,
  tenantId,
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/nowhere',
  host: '127.0.0.1:5432',
  target: 2,
  digest: 'a'.repeat(64),
  dryRun: false,
  plannedAt: at,
  ...(stage ? { stage } : {}),
});

const state = (runId: string, over: Partial<RunControlState>, seq: number): RunControlState => ({
  ...initialControlState(runId, undefined, seq, at),
  ...over,
  seq,
});

describe('run gate against a real nats-server', () => {
  let fixture: TaskBusFixture;
  let bus: Bus;
  let store: RunControlStore;
  let gate: RunGate;

  beforeAll(async () => {
    fixture = await startTaskBus('run-gate-test');
    bus = fixture.bus;
    store = await openRunControlStore(bus);
    await store.save(state('paused-before-start', { state: 'paused' }, 1));
    gate = await createRunGate({ bus, logger, executorId: 'x1', deferMs: 50 });
  });

  afterAll(async () => {
    await gate?.stop();
    await fixture?.dispose();
  });

  async function ledger(runId: string): Promise<TaskLedgerEntry[]> {
    const out: TaskLedgerEntry[] = [];
    await readSubject(
      bus,
      LEDGER_STREAM.name,
      ledgerSubject(runId),
      (m) => void out.push(decodeJson(m.data) as TaskLedgerEntry),
    );
    return out;
  }
  async function outcomes(runId: string): Promise<TenantOutcome[]> {
    const out: TenantOutcome[] = [];
    await readSubject(
      bus,
      STREAMS.outcomes.name,
      outcomeSubject(runId),
      (m) => void out.push(decodeJson(m.data) as TenantOutcome),
    );
    return out;
  }
  /** Waits until the gate's watch has seen a state (the KV watch is asynchronous). */
  async function saveAndSee(s: RunControlState, probe: TenantTask, expected: string): Promise<void> {
    await store.save(s);
    await expect
      .poll(async () => (await gate.check(probe, { streamSeq: 999_999 })).action, { timeout: 5_000 })
      .toBe(expected);
  }

  it('lets a task of a run it knows nothing about start, unless it is a fleet task waiting for canaries', async () => {
    expect(await gate.check(task('r-none', 't1'), { streamSeq: 1 })).toEqual({ action: 'proceed' });
    expect(await gate.check(task('r-none', 't1', 'canary'), { streamSeq: 2 })).toEqual({ action: 'proceed' });
    expect(await gate.check(task('r-none', 't2', 'fleet'), { streamSeq: 3 })).toEqual({
      action: 'parked',
      reason: 'canary',
    });
    const entries = await ledger('r-none');
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      kind: 'parked',
      reason: 'canary',
      taskSeq: 3,
      executorId: 'x1',
      task: { tenantId: 't2', stage: 'fleet' },
    });
  });

  it('loads the states stored before it started', async () => {
    expect(await gate.check(task('paused-before-start', 't1'), { streamSeq: 10 })).toEqual({
      action: 'parked',
      reason: 'paused',
    });
  });

  it('parks the tasks of a paused run once per delivery, and lets them start after resume', async () => {
    await saveAndSee(state('r-pause', { state: 'paused' }, 5), task('r-pause', 'probe'), 'parked');
    // The same delivery twice (a redelivered park that lost its ack) is one ledger entry.
    expect(await gate.check(task('r-pause', 't1'), { streamSeq: 21 })).toEqual({ action: 'parked', reason: 'paused' });
    expect(await gate.check(task('r-pause', 't1'), { streamSeq: 21 })).toEqual({ action: 'parked', reason: 'paused' });
    expect((await ledger('r-pause')).filter((e) => e.kind === 'parked' && e.task.tenantId === 't1')).toHaveLength(1);
    await saveAndSee(state('r-pause', { state: 'running' }, 6), task('r-pause', 't1'), 'proceed');
  });

  it('lets fleet tasks start once the run is promoted', async () => {
    await saveAndSee(state('r-canary', { stage: 'canary' }, 5), task('r-canary', 'probe', 'fleet'), 'parked');
    expect(await gate.check(task('r-canary', 'c1', 'canary'), { streamSeq: 31 })).toEqual({ action: 'proceed' });
    await saveAndSee(state('r-canary', { stage: 'fleet' }, 7), task('r-canary', 'f1', 'fleet'), 'proceed');
  });

  it('skips the tasks of a cancelled or rollout-stopped run with a skipped outcome', async () => {
    const cancel = { action: 'cancel' as const, reason: 'bad deploy', at };
    await saveAndSee(
      state('r-cancel', { state: 'cancelling', stoppedBy: cancel, note: cancel }, 8),
      task('r-cancel', 'probe'),
      'skipped',
    );
    expect(await gate.check(task('r-cancel', 't1'), { streamSeq: 41 })).toEqual({
      action: 'skipped',
      code: 'cancelled',
      reason: 'run cancelled: bad deploy',
    });
    const stop = { action: 'stop' as const, reason: 'canary c1 failed', at };
    await saveAndSee(
      state('r-stop', { state: 'cancelling', stoppedBy: stop, note: stop }, 8),
      task('r-stop', 'probe'),
      'skipped',
    );
    expect(await gate.check(task('r-stop', 't1', 'fleet'), { streamSeq: 42 })).toMatchObject({
      action: 'skipped',
      code: 'rollout_stopped',
    });
    const o = (await outcomes('r-cancel')).find((x) => x.tenantId === 't1');
    expect(o).toMatchObject({
      status: 'skipped',
      attempts: 0,
      executorId: 'x1',
      error: { code: 'cancelled', transient: false },
    });
    expect((await outcomes('r-stop')).find((x) => x.tenantId === 't1')?.error?.code).toBe('rollout_stopped');
  });

  it('skips leftover tasks of a finished run', async () => {
    await saveAndSee(state('r-done', { final: 'succeeded' }, 9), task('r-done', 'probe'), 'skipped');
    expect(await gate.check(task('r-done', 't1'), { streamSeq: 51 })).toMatchObject({
      action: 'skipped',
      code: 'run_completed',
    });
  });

  it('never moves a run backwards: an older state written later is ignored', async () => {
    expect(await store.save(state('r-mono', { state: 'paused' }, 20))).toBe(true);
    expect(await store.save(state('r-mono', { state: 'running' }, 19))).toBe(false);
    expect(await store.save(state('r-mono', { state: 'running' }, 20))).toBe(false);
    expect((await store.get('r-mono'))?.state).toBe('paused');
  });

  it('in the delivery pipeline: acks parked and skipped tasks, naks deferred ones, migrates the rest, drops what is no task', async () => {
    await bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: 'gate',
      filter_subject: 'sluice.tasks.gate',
      ack_policy: AckPolicy.Explicit,
      ack_wait: 30e9,
    });
    const consumer = await bus.js.consumers.get(STREAMS.tasks.name, 'gate');
    const verdicts: string[] = [];
    const worked: string[] = [];
    const delivery = createDelivery({
      bus,
      logger,
      config: { executorId: 'x1', maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 10, ackWaitMs: 30_000 },
      migrations: { forDigest: () => Promise.resolve(set) },
      gate: {
        async check(t, d) {
          const verdict = await gate.check(t, d);
          verdicts.push(verdict.action);
          return verdict;
        },
      },
      tenantWork: (t) => {
        worked.push(t.tenantId);
        return upToDate();
      },
    });
    await bus.publish('sluice.tasks.gate', task('r-pause', 'go'));
    await bus.publish('sluice.tasks.gate', task('r-cancel', 'skip-me'));
    await bus.publish('sluice.tasks.gate', task('r-none', 'wait', 'fleet'));
    await bus.publish('sluice.tasks.gate', { not: 'a task' });
    const results: string[] = [];
    for (let i = 0; i < 4; i++)
      results.push((await delivery.handle((await consumer.next({ expires: 2_000 }))!)).settled);
    expect(results).toEqual(['done', 'dropped', 'dropped', 'dropped']);
    expect(verdicts).toEqual(['proceed', 'skipped', 'parked']);
    expect(worked).toEqual(['go']);
    await expect.poll(async () => (await bus.jsm.consumers.info(STREAMS.tasks.name, 'gate')).num_ack_pending).toBe(0);

    // A decision that cannot be recorded (the ledger stream is gone) defers the task.
    await bus.jsm.streams.delete(LEDGER_STREAM.name);
    await bus.publish('sluice.tasks.gate', task('r-none', 'defer-me', 'fleet'));
    const msg = (await consumer.next({ expires: 2_000 }))!;
    expect((await delivery.handle(msg)).settled).toBe('retry');
    expect(verdicts.at(-1)).toBe('defer');
    const again = (await consumer.next({ expires: 3_000 }))!;
    expect(again.info.deliveryCount).toBe(2);
    again.ack();
  });
});
