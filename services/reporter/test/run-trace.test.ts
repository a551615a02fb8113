import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { traceHeaders } from '@sluice/bus';
import type { RunCompletedEvent } from '@sluice/contracts';
import { startTracing, type Tracing } from '@sluice/telemetry';
import { type OtlpReceiver, startOtlpReceiver } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { RunTraces } from '../src/run-trace.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const hex16 = (n: number) => n.toString(16).padStart(16, '0');
const msgWith = (spanId: string) => ({
  headers: traceHeaders(trace.setSpanContext(ROOT_CONTEXT, { traceId: TRACE, spanId, traceFlags: 1 })),
});

function completion(runId: string, failed: number, total: number): RunCompletedEvent {
  return {
    runId,
    status: failed > 0 ? 'partial' : 'succeeded',
    target: 'latest',
    targetVersion: 6,
    dryRun: false,
    counts: { total, migrated: total - failed, upToDate: 0, pending: 0, failed, skipped: 0 },
    startedAt: new Date(Date.now() - 1_000).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: 1_000,
    failures: [],
    failuresTruncated: false,
  };
}

describe('RunTraces', () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    tracing = startTracing({ service: 'reporter' });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('links failures first, then a bounded sample, and records the completion under the run root', async () => {
    const traces = new RunTraces(10);
    traces.onAccepted('r1', msgWith(hex16(1)));
    for (let i = 0; i < 1_000; i++)
      traces.onOutcome({ runId: 'r1', tenantId: `t${i}`, status: 'migrated' }, msgWith(hex16(1_000 + i)));
    for (let i = 0; i < 4; i++)
      traces.onOutcome(
        {
          runId: 'r1',
          tenantId: `f${i}`,
          status: 'failed',
          error: { code: 'sql_error', message: 'x', transient: false },
        },
        msgWith(hex16(5_000 + i)),
      );
    const { links, omitted } = traces.linksOf('r1');
    expect(links).toHaveLength(10);
    expect(omitted).toBe(994);
    expect(links.slice(0, 4).map((l) => l.attributes?.['sluice.status'])).toEqual([
      'failed',
      'failed',
      'failed',
      'failed',
    ]);
    // The sample reaches past the first tenants (a reservoir, not the first ten).
    expect(links.slice(4).some((l) => Number.parseInt(l.context.spanId, 16) >= 1_010)).toBe(true);

    const record = traces.prepareCompletion('r1');
    traces.forget('r1'); // the completed event came back before the publish resolved
    record(completion('r1', 4, 1_004));
    const [span] = await receiver.waitFor((s) => s.some((x) => x.name === 'sluice.run.completion'));
    expect(span).toMatchObject({
      traceId: TRACE,
      parentSpanId: hex16(1),
      serviceName: 'sluice-reporter',
      status: { code: 'error' },
      attributes: { 'sluice.run_id': 'r1', 'sluice.tenants.failed': 4, 'sluice.links.omitted': 994 },
    });
    expect(span!.links).toHaveLength(10);
    expect(span!.endMs - span!.startMs).toBeGreaterThanOrEqual(900);
    expect(traces.size).toBe(0);
  });

  it('keeps nothing for messages without trace context', () => {
    const traces = new RunTraces();
    traces.onAccepted('r2', {});
    traces.onOutcome({ runId: 'r2', tenantId: 't', status: 'migrated' }, {});
    expect(traces.size).toBe(0);
  });
});
