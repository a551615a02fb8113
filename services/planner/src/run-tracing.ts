import { isSpanContextValid, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type JsMsg, traceContextOf } from '@sluice/bus';
import type { TenantTask } from '@sluice/contracts';

const tracer = () => trace.getTracer('sluice-planner');

function fail(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/**
 * The root of a run's trace: `sluice.run` covers a request from delivery through validation,
 * planning and the `planned` event. A request that carried a trace context (a CLI or a CI job
 * that traces) becomes its parent.
 */
export function traceRequest(msg: JsMsg, handle: () => Promise<void>): Promise<void> {
  return tracer().startActiveSpan('sluice.run', { kind: SpanKind.CONSUMER }, traceContextOf(msg), async (span) => {
    if (span.isRecording()) {
      span.setAttributes({
        'messaging.system': 'nats',
        'messaging.destination.name': msg.subject,
        'sluice.attempt': msg.info.deliveryCount,
      });
    }
    try {
      await handle();
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** Names the run (and what became of the request: `new`, `resume`, `duplicate`, `conflict`, `rejected`) on the active `sluice.run` span. */
export function annotateRun(fields: {
  runId: string | undefined;
  targetVersion?: number;
  dryRun?: boolean;
  outcome?: string;
}): void {
  const span = trace.getActiveSpan();
  if (!span?.isRecording()) return;
  if (fields.runId !== undefined) span.setAttribute('sluice.run_id', fields.runId);
  if (fields.targetVersion !== undefined) span.setAttribute('sluice.target_version', fields.targetVersion);
  if (fields.dryRun !== undefined) span.setAttribute('sluice.dry_run', fields.dryRun);
  if (fields.outcome !== undefined) span.setAttribute('sluice.request.outcome', fields.outcome);
}

/** The active trace's id, for the `accepted` event (absent when tracing is off). */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && isSpanContextValid(ctx) ? ctx.traceId : undefined;
}

/**
 * One PRODUCER span per task, from publish to the stream's ack, which the task message carries
 * (its headers) to the executor. A span of its own rather than the run's context: the executor's
 * span then hangs under the tenant it belongs to, and a slow or failed publish shows per tenant.
 */
export function traceTaskPublish<T>(task: TenantTask, subject: string, publish: () => Promise<T>): Promise<T> {
  const attributes = {
    'sluice.run_id': task.runId,
    'sluice.tenant_id': task.tenantId,
    'sluice.host': task.host,
    'sluice.target_version': task.target,
    ...(task.rollbackOf !== undefined ? { 'sluice.rollback_of': task.rollbackOf } : {}),
    'messaging.system': 'nats',
    'messaging.operation.type': 'send',
    'messaging.destination.name': subject,
    'messaging.message.id': `${task.runId}:${task.tenantId}`,
  };
  return tracer().startActiveSpan('sluice.task.publish', { kind: SpanKind.PRODUCER, attributes }, async (span) => {
    try {
      return await publish();
    } catch (error) {
      fail(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
