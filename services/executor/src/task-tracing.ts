import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type JsMsg, traceContextOf } from '@sluice/bus';
import { SluiceError } from '@sluice/core';

import type { TaskResult } from './task-handler.js';

/** What the span reads from a task before it is validated (the handler validates). */
interface TaskFields {
  runId?: unknown;
  tenantId?: unknown;
  host?: unknown;
  target?: unknown;
  dryRun?: unknown;
}

function taskAttributes(msg: JsMsg): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'process',
    'messaging.destination.name': msg.subject,
    'sluice.attempt': msg.info.deliveryCount,
  };
  let task: TaskFields;
  try {
    task = JSON.parse(new TextDecoder().decode(msg.data)) as TaskFields;
  } catch {
    return out;
  }
  if (typeof task.runId === 'string') out['sluice.run_id'] = task.runId;
  if (typeof task.tenantId === 'string') out['sluice.tenant_id'] = task.tenantId;
  if (typeof task.host === 'string') out['sluice.host'] = task.host;
  if (typeof task.target === 'number') out['sluice.target_version'] = task.target;
  if (task.dryRun === true) out['sluice.dry_run'] = true;
  return out;
}

function exceptionOf(error: unknown): Error | string {
  return error instanceof Error ? error : JSON.stringify(error) ?? 'undefined';
}

function errorCode(error: unknown): string {
  return error instanceof SluiceError ? error.code : 'internal';
}

function record(span: Span, result: TaskResult): void {
  span.setAttribute('sluice.task.settled', result.settled);
  const outcome = result.outcome;
  if (outcome) {
    span.setAttribute('sluice.status', outcome.status);
    span.setAttribute('sluice.applied', outcome.applied);
    if (outcome.executorId) span.setAttribute('sluice.executor_id', outcome.executorId);
  }
  const code = outcome?.error?.code ?? (result.error === undefined ? undefined : errorCode(result.error));
  if (code !== undefined) {
    span.setAttribute('sluice.error_code', code);
    if (result.error !== undefined) span.recordException(exceptionOf(result.error));
    // A task put back for another attempt failed this delivery too; its retry shows as the next span.
    if (outcome?.status === 'failed' || result.settled === 'retry') span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
}

/**
 * One CONSUMER span per task delivery (`sluice.task`), child of the planner's publish span the
 * message carries: connect, journal, lock, each migration and their SQL hang under it, and the
 * outcome it publishes carries it on to the reporter. Attributes: run, tenant, host, target
 * version, attempt (the delivery count); status error with the error code when the tenant failed
 * or the attempt will be retried.
 */
export function traceTaskHandler<A extends unknown[]>(
  handle: (msg: JsMsg, ...rest: A) => Promise<TaskResult>,
): (msg: JsMsg, ...rest: A) => Promise<TaskResult> {
  return (msg, ...rest) => {
    const tracer = trace.getTracer('sluice-executor');
    return tracer.startActiveSpan('sluice.task', { kind: SpanKind.CONSUMER }, traceContextOf(msg), async (span) => {
      // Nothing is decoded for a span that records nothing (tracing off).
      if (span.isRecording()) span.setAttributes(taskAttributes(msg));
      try {
        const result = await handle(msg, ...rest);
        if (span.isRecording()) record(span, result);
        return result;
      } catch (error) {
        span.recordException(exceptionOf(error));
        span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(error) });
        throw error;
      } finally {
        span.end();
      }
    });
  };
}
