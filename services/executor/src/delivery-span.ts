import { type Context, context, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type JsMsg, traceContextOf } from '@sluice/bus';
import { SluiceError } from '@sluice/core';

import type { DeliveryResult } from './delivery.js';

/** The task's fields a span names, as they came (the delivery may find the task malformed). */
interface TaskFields {
  runId?: unknown;
  tenantId?: unknown;
  host?: unknown;
  target?: unknown;
  dryRun?: unknown;
  rollbackOf?: unknown;
}

/** One delivery's span, and the context to run the delivery in so its work nests under it. */
export interface DeliverySpan {
  readonly context: Context;
  /** Records how the delivery settled and ends the span. */
  end(result: DeliveryResult): void;
  /** Records an error the delivery threw and ends the span. */
  fail(error: unknown): void;
}

function exceptionOf(error: unknown): Error | string {
  return error instanceof Error ? error : (JSON.stringify(error) ?? 'undefined');
}

function errorCode(error: unknown): string {
  return error instanceof SluiceError ? error.code : 'internal';
}

function attributesOf(msg: JsMsg, fields: TaskFields | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'process',
    'messaging.destination.name': msg.subject,
    'sluice.attempt': msg.info.deliveryCount,
  };
  if (typeof fields?.runId === 'string') out['sluice.run_id'] = fields.runId;
  if (typeof fields?.tenantId === 'string') out['sluice.tenant_id'] = fields.tenantId;
  if (typeof fields?.host === 'string') out['sluice.host'] = fields.host;
  if (typeof fields?.target === 'number') out['sluice.target_version'] = fields.target;
  if (fields?.dryRun === true) out['sluice.dry_run'] = true;
  // A rollback: the run it undoes (the tenant's target comes from its journal).
  if (typeof fields?.rollbackOf === 'string') out['sluice.rollback_of'] = fields.rollbackOf;
  return out;
}

function record(span: Span, result: DeliveryResult): void {
  span.setAttribute('sluice.task.settled', result.settled);
  const outcome = result.outcome;
  if (outcome) {
    span.setAttribute('sluice.status', outcome.status);
    span.setAttribute('sluice.applied', outcome.applied);
    if (outcome.rolledBack) span.setAttribute('sluice.rolled_back', outcome.rolledBack);
    if (outcome.executorId) span.setAttribute('sluice.executor_id', outcome.executorId);
  }
  const code = outcome?.error?.code ?? (result.error === undefined ? undefined : errorCode(result.error));
  if (code !== undefined) {
    span.setAttribute('sluice.error_code', code);
    if (result.error !== undefined) span.recordException(exceptionOf(result.error));
    // A task put back for another attempt failed this delivery too; its retry shows as the next span.
    if (outcome?.status === 'failed' || result.settled === 'retry')
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
  }
}

/**
 * One CONSUMER span per task delivery (`sluice.task`), child of the planner's publish span the
 * message carries: connect, journal, lock, each migration and their SQL hang under it, and the
 * outcome it publishes carries it on to the reporter. Attributes: run, tenant, host, target
 * version, attempt (the delivery count); status error with the error code when the tenant failed
 * or the attempt will be retried. With tracing off the span records nothing and costs a lookup.
 */
export function startDeliverySpan(msg: JsMsg, fields: TaskFields | undefined): DeliverySpan {
  const parent = traceContextOf(msg);
  const span = trace.getTracer('sluice-executor').startSpan('sluice.task', { kind: SpanKind.CONSUMER }, parent);
  if (span.isRecording()) span.setAttributes(attributesOf(msg, fields));
  return {
    context: trace.setSpan(parent, span),
    end(result) {
      if (span.isRecording()) record(span, result);
      span.end();
    },
    fail(error) {
      span.recordException(exceptionOf(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode(error) });
      span.end();
    },
  };
}

/** Runs `fn` with the delivery's span as the active context. */
export function inDeliverySpan<T>(span: DeliverySpan, fn: () => Promise<T>): Promise<T> {
  return context.with(span.context, fn);
}
