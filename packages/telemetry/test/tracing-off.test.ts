import { Writable } from 'node:stream';

import { context, propagation, trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

import { createLogger } from '../src/logger.js';
import { startTracing, tracingRequested } from '../src/tracing.js';

describe('tracingRequested', () => {
  it('is off without an OTLP endpoint or an explicit exporter', () => {
    expect(tracingRequested({}).on).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).on).toBe(
      false,
    );
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).on).toBe(
      false,
    );
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }).on).toBe(false);
  });

  it('is on with either endpoint variable or an explicit exporter, and never shows endpoint credentials', () => {
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://jaeger:4318' })).toEqual({
      on: true,
      why: 'OTLP to http://jaeger:4318/',
    });
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }).on).toBe(true);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: 'console' }).on).toBe(true);
    expect(tracingRequested({ OTEL_SDK_DISABLED: 'false', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' }).on).toBe(
      true,
    );
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:s3cret@c:4318/?token=t0k' }).why).not.toMatch(
      /s3cret|t0k/,
    );
  });
});

describe('startTracing without OTEL settings', () => {
  it('does not start the SDK: spans are non-recording, no context is propagated, logs carry no trace ids', async () => {
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
    const tracing = startTracing({ service: 'off-test' });
    expect(tracing.enabled).toBe(false);
    const lines: Array<Record<string, unknown>> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger({ service: 'x', destination });
    trace.getTracer('t').startActiveSpan('s', (span) => {
      expect(span.isRecording()).toBe(false);
      const carrier: Record<string, string> = {};
      propagation.inject(context.active(), carrier);
      expect(carrier).toEqual({});
      log.info('inside');
      span.end();
    });
    expect(lines[0]).not.toHaveProperty('trace_id');
    // Nothing was registered globally.
    expect(trace.getTracerProvider().constructor.name).toBe('ProxyTracerProvider');
    expect(trace.getTracerProvider().getTracer('x').startSpan('y').isRecording()).toBe(false);
    await tracing.shutdown();
  });
});
