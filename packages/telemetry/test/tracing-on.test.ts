import { Writable } from 'node:stream';

import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type OtlpReceiver, startOtlpReceiver } from '@sluice/testkit';
// Imported before the SDK starts, as a service's modules import it: the case tracing must handle.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createLogger } from '../src/logger.js';
import { startTracing, type Tracing } from '../src/tracing.js';

describe('startTracing with an OTLP endpoint', () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    tracing = startTracing({ service: 'unit' });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('exports spans with the service name, attributes and status', async () => {
    expect(tracing.enabled).toBe(true);
    const tracer = trace.getTracer('unit-test');
    const id = tracer.startActiveSpan(
      'unit.parent',
      { kind: SpanKind.CONSUMER, attributes: { 'sluice.run_id': 'r1' } },
      (parent) => {
        tracer.startSpan('unit.child').end();
        parent.setStatus({ code: SpanStatusCode.ERROR, message: 'sql_error' });
        parent.end();
        return parent.spanContext().spanId;
      },
    );
    const spans = await receiver.waitFor(
      (s) => s.some((x) => x.name === 'unit.child') && s.some((x) => x.name === 'unit.parent'),
    );
    const parent = spans.find((s) => s.name === 'unit.parent')!;
    const child = spans.find((s) => s.name === 'unit.child')!;
    expect(parent).toMatchObject({
      spanId: id,
      kind: 'consumer',
      serviceName: 'sluice-unit',
      attributes: { 'sluice.run_id': 'r1' },
      status: { code: 'error', message: 'sql_error' },
    });
    expect(child.parentSpanId).toBe(parent.spanId);
    expect(child.traceId).toBe(parent.traceId);
  });

  it('records pg spans under our span for a real query, with no password literal in the statement', async () => {
    const client = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    const tracer = trace.getTracer('unit-test');
    const parentId = await tracer.startActiveSpan('unit.migration', async (span) => {
      await client.connect();
      await client.query("SELECT 1 AS one, $q$CREATE ROLE r PASSWORD 'hunter2'$q$ AS ddl");
      await client.end();
      span.end();
      return span.spanContext().spanId;
    });
    // Outside any span: no pg span (requireParentSpan), so stray queries cost nothing.
    const stray = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' });
    await stray.connect();
    await stray.query('SELECT 2 AS stray');
    await stray.end();
    const spans = await receiver.waitFor((s) =>
      s.some((x) => x.parentSpanId === parentId && x.name.startsWith('pg.query')),
    );
    const query = spans.find((x) => x.parentSpanId === parentId && x.name.startsWith('pg.query'))!;
    expect(query.kind).toBe('client');
    expect(query.attributes).toMatchObject({
      'db.system.name': 'postgresql',
      'db.namespace': 'postgres',
      'server.address': '127.0.0.1',
      'server.port': 5432,
    });
    expect(String(query.attributes['db.query.text'])).toContain("PASSWORD '[redacted]'");
    expect(spans.some((x) => x.parentSpanId === parentId && x.name === 'pg.connect')).toBe(true);
    expect(receiver.bodies().join('\n')).not.toContain('hunter2');
    expect(spans.some((x) => String(x.attributes['db.query.text']).includes('stray'))).toBe(false);
  });

  it('puts the active span ids on log lines', () => {
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger({ service: 'x', destination });
    const ids = trace.getTracer('unit-test').startActiveSpan('unit.log', (span) => {
      log.child({ runId: 'r1', tenantId: 't1' }).info('inside');
      span.end();
      return span.spanContext();
    });
    log.info('outside');
    expect(lines[0]).toMatchObject({ runId: 'r1', tenantId: 't1', trace_id: ids.traceId, span_id: ids.spanId });
    expect(lines[1]).not.toHaveProperty('trace_id');
  });
});
