import { LEDGER_STREAM, STREAMS } from '@sluice/contracts';
import { countOutcomes, waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type FaultStack, faultStack, journalProblems, markTenants, outcomeCopies } from './faults-support.js';

const TENANTS = 40;
const RUN = 'fx-full-1';

describe('the outcomes stream fills up (SLUICE_STREAM_MAX_BYTES) in the middle of a run', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await faultStack('fx-full', TENANTS);
    await markTenants(stack.fleet, 'all', { slowSeconds: 0.2 });
  });

  afterAll(() => stack?.dispose());

  it('executors hold their outcomes and take no new work, nothing fails or is lost, and raising the limit finishes the run', async () => {
    const { nc, jsm, ws, fleet } = stack;
    const env = stack.env({
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_HOST_LIMIT: '4',
      SLUICE_ACK_WAIT: '4s',
      SLUICE_STREAM_MAX_BYTES: '64MiB',
    });
    const reporter = await ws.start('reporter', env);
    const first = await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'full-x1', SLUICE_CONCURRENCY: '4' });
    await ws.start('planner', env);
    for (const name of [STREAMS.outcomes.name, LEDGER_STREAM.name]) {
      expect((await jsm.streams.info(name)).config, name).toMatchObject({ max_bytes: 64 * 2 ** 20, discard: 'new' });
    }
    await stack.publishRequest({ runId: RUN, target: 'latest' });
    await expect.poll(() => countOutcomes(nc, RUN), { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(8);

    // The stream fills: with no executor running the outcomes are still, and the stream is capped
    // at exactly what it holds (as a full stream would be).
    await first.stop();
    const info = await jsm.streams.info(STREAMS.outcomes.name);
    const before = info.state.messages;
    await jsm.streams.update(STREAMS.outcomes.name, { ...info.config, max_bytes: info.state.bytes });
    expect((await jsm.streams.info(STREAMS.outcomes.name)).state.messages).toBe(before);
    const outcomesAtFull = await countOutcomes(nc, RUN);
    expect(outcomesAtFull).toBeLessThan(TENANTS);

    const second = await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'full-x2', SLUICE_CONCURRENCY: '4' });
    const held = await second.waitForLog(
      (l) => l.msg === 'outcomes stream is full: holding the outcome, not taking new work',
      60_000,
    );
    expect(String((held.err as { message?: string } | undefined)?.message)).toMatch(/raise SLUICE_STREAM_MAX_BYTES/);
    // Holding is not failing: all four slots end up holding, and the executor takes no fifth tenant.
    await expect
      .poll(() => new Set(second.logs.filter((l) => l.msg === held.msg).map((l) => l.tenantId)).size, {
        timeout: 60_000,
      })
      .toBe(4);
    expect(await countOutcomes(nc, RUN)).toBe(outcomesAtFull);
    expect(
      second.logs.filter((l) => l.msg === 'tenant failed' || l.msg === 'handler failed; message put back'),
    ).toEqual([]);

    // The operator raises the limit and restarts the reporter, which applies it: the held outcomes go in.
    await reporter.stop();
    await ws.start('reporter', { ...env, SLUICE_STREAM_MAX_BYTES: '1GiB' });
    await second.waitForLog((l) => l.msg === 'outcome published: the outcomes stream has room again', 60_000);
    const completed = await waitForCompleted(nc, RUN, 120_000);
    expect(completed).toMatchObject({
      status: 'succeeded',
      counts: { total: TENANTS, migrated: TENANTS, failed: 0 },
    });
    expect(await outcomeCopies(nc, RUN)).toEqual({ tenants: TENANTS, repeated: [] });
    expect(await journalProblems(fleet, RUN)).toEqual([]);
    expect((await jsm.streams.info(STREAMS.outcomes.name)).config.max_bytes).toBe(2 ** 30);

    // What a run of this fleet stored, per tenant, in each stream (the figure for sizing max_bytes).
    const perTenant: Record<string, number> = {};
    for (const name of [...Object.values(STREAMS).map((s) => s.name), LEDGER_STREAM.name]) {
      perTenant[name] = Math.round((await jsm.streams.info(name)).state.bytes / TENANTS);
    }
    console.log(`stream full: held ${outcomesAtFull}/${TENANTS}; bytes per tenant ${JSON.stringify(perTenant)}`);
  });
});
