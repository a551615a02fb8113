import { requestMsgId, STREAMS } from '@sluice/contracts';
import { countOutcomes, waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type FaultStack, faultStack, journalProblems, subjectCount } from './faults-support.js';

const TENANTS = 20;
const SUSPENDED = 2_000;
const RUN = 'fx-planner-kill-1';

describe('a planner killed in the middle of planning, then a new one', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await faultStack('fx-planner', TENANTS);
    // Many suspended rows (planner-made `skipped` outcomes, no database) make planning take a while.
    const suspended = Array.from({ length: SUSPENDED }, (_, i) => ({
      tenantId: `sleeper-${i}`,
      databaseUrl: `postgres://postgres@127.0.0.1:5432/sleeper_${i}`,
      status: 'suspended',
    }));
    await stack.fleet.writeRegistry(stack.registry, suspended);
  });

  afterAll(() => stack?.dispose());

  it('publishes `accepted` and `planned` once each, and the run completes with exact counts', async () => {
    const { nc, jsm, ws, fleet } = stack;
    // One publish at a time: planning takes seconds, so the kill lands in the middle of it.
    const env = stack.env({ SLUICE_DISCOVERY_INTERVAL: '200ms', SLUICE_PUBLISH_WINDOW: '1' });
    await ws.start('reporter', env);
    await ws.start('executor', env);
    const first = await ws.start('planner', env);
    const accepted = nc.subscribe(`sluice.runs.${RUN}.accepted`, { max: 1 });
    const request = { runId: RUN, target: 'latest' };
    await stack.publishRequest(request, requestMsgId(RUN));
    for await (const _ of accepted) break;
    // Killed once some of the run is out, long before all of it is.
    await expect.poll(() => countOutcomes(nc, RUN), { timeout: 30_000, interval: 20 }).toBeGreaterThanOrEqual(50);
    await first.kill();
    const outAtKill = await countOutcomes(nc, RUN);
    expect(outAtKill).toBeLessThan(TENANTS + SUSPENDED);

    // A new planner, and the client publishes its request again (as a retrying client would; the
    // killed planner's unacked copy would come back too, after the request consumer's ack wait).
    const second = await ws.start('planner', env);
    await stack.publishRequest(request);
    await second.waitForLog((l) => l.msg === 'planning run' && l.resume === true, 30_000);
    const completed = await waitForCompleted(nc, RUN, 120_000);
    console.log(`planner restart: killed with ${outAtKill} of ${TENANTS + SUSPENDED} outcomes out`);
    expect(completed).toMatchObject({
      status: 'succeeded',
      counts: { total: TENANTS + SUSPENDED, migrated: TENANTS, skipped: SUSPENDED, failed: 0 },
    });
    for (const event of ['accepted', 'planned', 'completed'])
      expect(await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${RUN}.${event}`), event).toBe(1);
    expect(await countOutcomes(nc, RUN)).toBe(TENANTS + SUSPENDED);
    expect(await journalProblems(fleet, RUN)).toEqual([]);
  });
});
