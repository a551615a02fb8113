import { type MigrateRequest, MigrateRequestSchema } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import { rollbackScope, type RunEventLookup } from '../src/rollback-request.js';

/** The port over a fixed set of runs: their `accepted` events and whether they completed. */
function runs(accepted: Record<string, unknown>, completed: string[]): RunEventLookup {
  return {
    accepted: (runId) => Promise.resolve(accepted[runId] ?? null),
    completed: (runId) => Promise.resolve(completed.includes(runId)),
  };
}

const acceptedEvent = (runId: string, extra: Record<string, unknown> = {}) => ({
  runId,
  target: 'latest',
  targetVersion: 6,
  digest: 'd'.repeat(64),
  dryRun: false,
  acceptedAt: '2026-11-30T00:00:00.000Z',
  ...extra,
});

const request = (input: Record<string, unknown>): MigrateRequest =>
  MigrateRequestSchema.parse({ runId: 'undo', rollback: { runId: 'r1' }, ...input });

describe('rollbackScope', () => {
  const lookup = runs(
    {
      r1: acceptedEvent('r1', { tenants: { tags: { tier: 'gold' } } }),
      dry: acceptedEvent('dry', { dryRun: true }),
      undo0: acceptedEvent('undo0', { target: 0, targetVersion: 0, rollbackOf: { runId: 'r1', force: false } }),
      busy: acceptedEvent('busy'),
    },
    ['r1', 'dry', 'undo0'],
  );

  it("covers the undone run's tenants, or the request's own", async () => {
    expect(await rollbackScope(request({}), lookup)).toEqual({ ok: true, tenants: { tags: { tier: 'gold' } } });
    expect(await rollbackScope(request({ tenants: { ids: ['a'] } }), lookup)).toEqual({
      ok: true,
      tenants: { ids: ['a'] },
    });
  });

  it.each([
    ['missing', 'rollback.runId: run missing does not exist'],
    ['dry', 'rollback.runId: run dry was a dry run; it changed nothing'],
    ['undo0', 'rollback.runId: run undo0 is itself a rollback (of r1); migrate forward to redo what it undid'],
    ['busy', 'rollback.runId: run busy has not completed; cancel it (sluice cancel busy) and wait for it to end'],
    ['undo', 'rollback.runId: a run cannot roll itself back'],
  ])('refuses a rollback of %s', async (runId, reason) => {
    expect(await rollbackScope(request({ rollback: { runId } }), lookup)).toEqual({ ok: false, reasons: [reason] });
  });
});
