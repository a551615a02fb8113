import { type Bus, connectBus, ensureTopology, followStream } from '@sluice/bus';
import { outcomeSubject, runEventSubject, STREAMS, type TenantOutcome } from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createReporter } from '../src/reporter.js';

const logger = createLogger({ service: 'reporter-test', level: 'silent' });

describe('reporter against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'reporter-test' }, logger);
    await ensureTopology(bus.jsm);
  }, 30_000);
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  const outcome = (tenantId: string): TenantOutcome => ({
    runId: 'rx',
    tenantId,
    status: 'migrated',
    applied: [1],
    attempts: 1,
    finishedAt: new Date().toISOString(),
  });

  it('publishes completed once, even when two reporters replay the same streams', async () => {
    await bus.publish(runEventSubject('rx', 'accepted'), {
      runId: 'rx',
      target: 'latest',
      targetVersion: 1,
      digest: 'a'.repeat(64),
      dryRun: false,
      acceptedAt: new Date().toISOString(),
    });
    await bus.publish(runEventSubject('rx', 'planned'), {
      runId: 'rx',
      total: 3,
      tasks: 3,
      skipped: 0,
      invalid: 0,
      plannedAt: new Date().toISOString(),
    });
    for (const t of ['a', 'b', 'c', 'a']) await bus.publish(outcomeSubject('rx'), outcome(t));
    const reporters = [createReporter({ bus, logger }), createReporter({ bus, logger })];
    for (const reporter of reporters) {
      const runs = await followStream(bus, STREAMS.runs.name, logger, (m) => reporter.onRunEvent(m));
      const outcomes = await followStream(bus, STREAMS.outcomes.name, logger, (m) => reporter.onOutcome(m));
      await Promise.all([runs.caughtUp, outcomes.caughtUp]);
      await reporter.goLive();
      await runs.stop();
      await outcomes.stop();
    }
    const info = await bus.jsm.streams.info(STREAMS.runs.name, { subjects_filter: runEventSubject('rx', 'completed') });
    expect(info.state.subjects?.[runEventSubject('rx', 'completed')]).toBe(1);
    expect(reporters[0]!.book.get('rx')?.completed?.counts).toMatchObject({ total: 3, migrated: 3 });
  });
});
