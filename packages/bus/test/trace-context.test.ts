import { jetstream } from '@nats-io/jetstream';
import { type JsMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { context, trace } from '@opentelemetry/api';
import { STREAMS } from '@sluice/contracts';
import { createLogger, startTracing, type Tracing } from '@sluice/telemetry';
import { type NatsServerHandle, type OtlpReceiver, startNatsServer, startOtlpReceiver } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { publishReliably } from '../src/publish.js';
import { ensureTopology } from '../src/topology.js';
import { traceContextOf, traceHeaders } from '../src/trace-context.js';

const logger = createLogger({ service: 'bus-test', level: 'silent' });

describe('trace context in NATS message headers', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let receiver: OtlpReceiver;
  let tracing: Tracing;
  let n = 0;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    for (const k of Object.keys(process.env)) if (k.startsWith('OTEL_')) delete process.env[k];
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    tracing = startTracing({ service: 'bus-test' });
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bus-test' }, logger);
    await ensureTopology(bus.jsm);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
    await tracing?.shutdown();
    await receiver?.close();
  });

  /** Publishes through `publish`, then reads the message back from the stream. */
  async function roundTrip(publish: (subject: string) => Promise<unknown>): Promise<JsMsg> {
    const subject = `sluice.outcomes.trace${++n}`;
    await publish(subject);
    const consumer = await bus.js.consumers.get(STREAMS.outcomes.name, { filter_subjects: subject });
    const msg = await consumer.next({ expires: 5_000 });
    if (!msg) throw new Error('message not stored');
    return msg;
  }

  it('carries the active span through a real message, and nothing outside a span', async () => {
    const tracer = trace.getTracer('bus-test');
    const sent = await tracer.startActiveSpan('publisher', async (span) => {
      const msg = await roundTrip((subject) => publishReliably(bus, subject, { a: 1 }, { msgId: `m${n}` }));
      span.end();
      return { msg, ctx: span.spanContext() };
    });
    expect(sent.msg.headers?.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const received = trace.getSpanContext(traceContextOf(sent.msg));
    expect(received).toMatchObject({ traceId: sent.ctx.traceId, spanId: sent.ctx.spanId, isRemote: true });

    const plain = await roundTrip((subject) => bus.publish(subject, { b: 2 }));
    expect(plain.headers).toBeUndefined();
    expect(trace.getSpanContext(traceContextOf(plain))).toBeUndefined();
    expect(traceHeaders(context.active())).toBeUndefined();
  });

  it('reads the header case-insensitively (Traceparent, TRACEPARENT)', async () => {
    for (const name of ['Traceparent', 'TRACEPARENT']) {
      const traceId = `${String(++n).padStart(2, '0')}f7651916cd43dd8448eb211c80319c`;
      const msg = await roundTrip((subject) => {
        const h = headers();
        h.set(name, `00-${traceId}-b7ad6b7169203331-01`);
        return jetstream(bus.nc).publish(subject, '{}', { headers: h });
      });
      expect(msg.headers?.keys()).toContain(name);
      expect(trace.getSpanContext(traceContextOf(msg))).toMatchObject({ traceId, spanId: 'b7ad6b7169203331' });
    }
  });

  it('lets a caller give its own headers (a context other than the active one)', async () => {
    const remote = trace.setSpanContext(context.active(), {
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
    });
    const msg = await roundTrip((subject) => publishReliably(bus, subject, {}, { headers: traceHeaders(remote)! }));
    expect(trace.getSpanContext(traceContextOf(msg))).toMatchObject({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: '00f067aa0ba902b7',
    });
  });
});
