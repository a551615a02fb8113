import { type RunAcceptedEvent } from '@sluice/contracts';
import {
  collectRunEvents,
  type OtlpReceiver,
  type ReceivedSpan,
  startOtlpReceiver,
  waitForCompleted,
  withFleetStack,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The spans of one trace, with lookups by name and by parent. */
function traceOf(spans: ReceivedSpan[], traceId: string) {
  const mine = spans.filter((s) => s.traceId === traceId);
  return {
    spans: mine,
    named: (name: string) => mine.filter((s) => s.name === name),
    parentOf: (s: ReceivedSpan) => mine.find((p) => p.spanId === s.parentSpanId),
    childrenOf: (s: ReceivedSpan) => mine.filter((c) => c.parentSpanId === s.spanId),
  };
}

describe('tracing: one trace per run across planner, executor (with pg) and reporter', () => {
  let receiver: OtlpReceiver;
  const missingDb = `sluice_trace_missing_${process.pid}`;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
  });
  // A tenant whose database does not exist: it fails (database_error), for the error paths.
  const stack = withFleetStack({ beforeAll, afterAll }, () => ({
    fleets: [{ count: 3, prefix: `sluice_trace_${process.pid}`, tenantPrefix: 'trace' }],
    extraRows: [{ tenantId: 'trace-missing', databaseUrl: `postgres://postgres@127.0.0.1:5432/${missingDb}` }],
    env: {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '100',
      SLUICE_DISCOVERY_INTERVAL: '250ms',
    },
  }));

  const request = (payload: unknown) => stack.publishRequest(payload);

  it("one tenant's task is one trace: planner -> executor -> migration -> pg, and the reporter links to it", async () => {
    await request({ runId: 'trace-one', target: 'latest', tenants: { ids: ['trace-0001'] } });
    const completed = await waitForCompleted(stack.nc, 'trace-one');
    expect(completed.status).toBe('succeeded');
    expect(completed.traceId).toMatch(/^[0-9a-f]{32}$/);
    const events = await collectRunEvents(stack.nc, 'trace-one', (subject) => subject.endsWith('.completed'));
    expect((events.find((e) => e.subject.endsWith('.accepted'))?.data as RunAcceptedEvent).traceId).toBe(
      completed.traceId,
    );

    const traceId = completed.traceId!;
    const all = await receiver.waitFor((spans) => {
      const t = traceOf(spans, traceId);
      return (
        t.named('sluice.run.completion').length === 1 &&
        // Versions 1-4 travel in one message, then the no-transaction 5, then 6.
        t.named('sluice.migration').length === 3 &&
        t.named('sluice.run').length === 1
      );
    });
    const t = traceOf(all, traceId);
    expect(new Set(t.spans.map((s) => s.serviceName))).toEqual(
      new Set(['sluice-planner', 'sluice-executor', 'sluice-reporter']),
    );

    const root = t.named('sluice.run')[0]!;
    expect(root).toMatchObject({
      serviceName: 'sluice-planner',
      kind: 'consumer',
      parentSpanId: '',
      attributes: { 'sluice.run_id': 'trace-one', 'sluice.target_version': 6 },
    });

    const [publish] = t.named('sluice.task.publish');
    expect(publish).toMatchObject({
      serviceName: 'sluice-planner',
      kind: 'producer',
      parentSpanId: root.spanId,
      attributes: { 'sluice.run_id': 'trace-one', 'sluice.tenant_id': 'trace-0001' },
    });

    const [task] = t.named('sluice.task');
    expect(task).toMatchObject({
      serviceName: 'sluice-executor',
      kind: 'consumer',
      parentSpanId: publish!.spanId,
      status: { code: 'unset' },
      attributes: {
        'sluice.run_id': 'trace-one',
        'sluice.tenant_id': 'trace-0001',
        'sluice.host': '127.0.0.1:5432',
        'sluice.target_version': 6,
        'sluice.attempt': 1,
        'sluice.status': 'migrated',
      },
    });

    // connect, journal and the migrations under the task (the lock travels with the first batch); SQL under each.
    const steps = t.childrenOf(task!).map((s) => s.name);
    expect(steps).toEqual(expect.arrayContaining(['sluice.connect', 'sluice.journal', 'sluice.migration']));
    expect(t.childrenOf(t.named('sluice.connect')[0]!).map((s) => s.name)).toContain('pg.connect');
    const migrations = t
      .named('sluice.migration')
      .sort((a, b) => Number(a.attributes['sluice.version']) - Number(b.attributes['sluice.version']));
    expect(
      migrations.flatMap(
        (m) => (m.attributes['sluice.versions'] as number[] | undefined) ?? [m.attributes['sluice.version']],
      ),
    ).toEqual([1, 2, 3, 4, 5, 6]);
    for (const m of migrations) {
      expect(m.parentSpanId).toBe(task!.spanId);
      const sql = t.childrenOf(m).filter((s) => s.name.startsWith('pg.query'));
      expect(sql.length).toBeGreaterThan(0);
      expect(sql[0]).toMatchObject({
        kind: 'client',
        attributes: { 'db.system.name': 'postgresql', 'db.namespace': stack.fleet.tenants[0]!.database },
      });
    }
    // The whole chain, from a SQL statement up to the run's root.
    const chain: string[] = [];
    for (
      let s: ReceivedSpan | undefined = t.childrenOf(migrations[0]!).find((x) => x.name.startsWith('pg.query'));
      s;
      s = t.parentOf(s)
    )
      chain.push(`${s.serviceName}/${s.name.split(' ')[0]}`);
    expect(chain[0]).toMatch(/^sluice-executor\/pg\.query/);
    expect(chain.slice(1)).toEqual([
      'sluice-executor/sluice.migration',
      'sluice-executor/sluice.task',
      'sluice-planner/sluice.task.publish',
      'sluice-planner/sluice.run',
    ]);

    // The reporter: one span in the run's trace, under the root, linking to the task span.
    const [completion] = t.named('sluice.run.completion');
    expect(completion).toMatchObject({
      serviceName: 'sluice-reporter',
      parentSpanId: root.spanId,
      attributes: { 'sluice.run_id': 'trace-one', 'sluice.run.status': 'succeeded', 'sluice.links.omitted': 0 },
    });
    expect(completion!.links).toEqual([
      { traceId, spanId: task!.spanId, attributes: { 'sluice.tenant_id': 'trace-0001', 'sluice.status': 'migrated' } },
    ]);
    expect(t.spans.filter((s) => s.serviceName === 'sluice-reporter')).toHaveLength(1);

    // No query parameters, no passwords: nothing but what the migrations say.
    expect(
      t.spans.some((s) =>
        Object.keys(s.attributes).some((k) => k.startsWith('db.query.parameter') || k === 'db.postgresql.values'),
      ),
    ).toBe(false);
  });

  it('a run of several tenants: one task span each, failures marked and linked first; logs carry the trace', async () => {
    await request({ runId: 'trace-few', target: 'latest' });
    const completed = await waitForCompleted(stack.nc, 'trace-few');
    expect(completed.counts).toMatchObject({ total: 4, failed: 1 });
    const traceId = completed.traceId!;
    const all = await receiver.waitFor(
      (spans) =>
        traceOf(spans, traceId).named('sluice.run.completion').length === 1 &&
        traceOf(spans, traceId).named('sluice.task').length === 4,
    );
    const t = traceOf(all, traceId);
    const tasks = t.named('sluice.task');
    expect(new Set(tasks.map((s) => s.attributes['sluice.tenant_id']))).toEqual(
      new Set(['trace-0001', 'trace-0002', 'trace-0003', 'trace-missing']),
    );
    for (const task of tasks) expect(t.parentOf(task)?.name).toBe('sluice.task.publish');
    // trace-0001 was migrated by the first run: this one finds it up to date.
    expect(tasks.find((s) => s.attributes['sluice.tenant_id'] === 'trace-0001')?.attributes['sluice.status']).toBe(
      'upToDate',
    );

    const failed = tasks.find((s) => s.attributes['sluice.tenant_id'] === 'trace-missing')!;
    expect(failed.status).toEqual({ code: 'error', message: 'database_error' });
    expect(failed.attributes).toMatchObject({ 'sluice.status': 'failed', 'sluice.error_code': 'database_error' });
    const connectSpan = t.childrenOf(failed).find((s) => s.name === 'sluice.connect');
    expect(connectSpan?.status.code).toBe('error');

    const [completion] = t.named('sluice.run.completion');
    expect(completion!.status.code).toBe('error');
    expect(completion!.links).toHaveLength(4);
    expect(completion!.links[0]).toMatchObject({
      spanId: failed.spanId,
      attributes: { 'sluice.status': 'failed', 'sluice.error_code': 'database_error' },
    });
    expect(new Set(completion!.links.map((l) => l.spanId))).toEqual(new Set(tasks.map((s) => s.spanId)));

    // The executor's log line about the failed tenant leads to its span.
    const executor = stack.services.find((s) => s.name === 'executor')!;
    const line = await executor.waitForLog(
      (l) => l.msg === 'tenant failed' && l.tenantId === 'trace-missing' && l.runId === 'trace-few',
    );
    expect(line).toMatchObject({ trace_id: traceId, span_id: failed.spanId });
    expect(JSON.stringify(receiver.bodies())).not.toMatch(/password/i);
  });
});
