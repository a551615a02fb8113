import {
  type Context,
  type Link,
  ROOT_CONTEXT,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { traceContextOf } from '@sluice/bus';
import type { RunCompletedEvent, TenantOutcome } from '@sluice/contracts';

/** A message, as far as its trace context goes. */
type Carrier = Parameters<typeof traceContextOf>[0];

/** The SDK's default link limit (`OTEL_SPAN_LINK_COUNT_LIMIT`): links beyond it would be dropped anyway. */
export const MAX_RUN_LINKS = 128;

/** Oldest runs are forgotten beyond this many (a completed event normally frees a run at once). */
const MAX_RUNS = 10_000;

interface RunLinks {
  /** The planner's `sluice.run` span, from the `accepted` event's headers. */
  parent?: SpanContext;
  /** Task spans of failed tenants, first come first kept. */
  failed: Link[];
  /** A uniform sample of the other tenants' task spans (reservoir). */
  sample: Link[];
  seen: number;
  failedSeen: number;
}

/**
 * The reporter's part of a run's trace. It learns the run's root span from the `accepted`
 * event's headers and each tenant's task span from its outcome's headers, and at completion
 * records one span, `sluice.run.completion`, in the run's trace (child of `sluice.run`, from
 * accepted to completed) that LINKS to task spans rather than nesting thousands of children:
 * failures first, then a uniform sample, at most {@link MAX_RUN_LINKS}. Memory per run is
 * bounded by that. A restarted reporter replays both streams, so it knows the same again.
 * With tracing off nothing is extracted or kept (no propagator: no span contexts).
 */
export class RunTraces {
  private readonly runs = new Map<string, RunLinks>();

  constructor(
    private readonly maxLinks = MAX_RUN_LINKS,
    private readonly random: () => number = Math.random,
  ) {}

  private entry(runId: string): RunLinks {
    let run = this.runs.get(runId);
    if (!run) {
      if (this.runs.size >= MAX_RUNS) this.runs.delete(this.runs.keys().next().value!);
      run = { failed: [], sample: [], seen: 0, failedSeen: 0 };
      this.runs.set(runId, run);
    }
    return run;
  }

  /** The run's root span, as the `accepted` event carries it. */
  onAccepted(runId: string, msg: Carrier): void {
    const parent = spanContextOf(msg);
    if (parent) this.entry(runId).parent = parent;
  }

  /** A tenant's task span, as its outcome carries it. */
  onOutcome(outcome: Pick<TenantOutcome, 'runId' | 'tenantId' | 'status' | 'error'>, msg: Carrier): void {
    const ctx = spanContextOf(msg);
    if (!ctx) return;
    const run = this.entry(outcome.runId);
    const link: Link = {
      context: ctx,
      attributes: {
        'sluice.tenant_id': outcome.tenantId,
        'sluice.status': outcome.status,
        ...(outcome.error ? { 'sluice.error_code': outcome.error.code } : {}),
      },
    };
    if (outcome.status === 'failed') {
      run.failedSeen += 1;
      if (run.failed.length < this.maxLinks) run.failed.push(link);
      return;
    }
    run.seen += 1;
    if (run.sample.length < this.maxLinks) run.sample.push(link);
    else {
      const j = Math.floor(this.random() * run.seen);
      if (j < this.maxLinks) run.sample[j] = link;
    }
  }

  /** Links for a completion span: failures first, then the sample, at most `maxLinks`. */
  linksOf(runId: string): { links: Link[]; omitted: number } {
    const run = this.runs.get(runId);
    if (!run) return { links: [], omitted: 0 };
    const links = [...run.failed, ...run.sample].slice(0, this.maxLinks);
    return { links, omitted: run.seen + run.failedSeen - links.length };
  }

  /**
   * Takes what is known of a run's trace before its `completed` event is published (the event
   * may come back on the stream, and free the run, before the publish resolves) and returns the
   * function that records the completion span, to call once this reporter's publish won.
   */
  prepareCompletion(runId: string): (completion: RunCompletedEvent) => void {
    const run = this.runs.get(runId);
    const parent: Context = run?.parent ? trace.setSpanContext(ROOT_CONTEXT, run.parent) : ROOT_CONTEXT;
    const { links, omitted } = this.linksOf(runId);
    return (completion) => {
      const started = Date.parse(completion.startedAt);
      const span = trace.getTracer('sluice-reporter').startSpan(
        'sluice.run.completion',
        {
          kind: SpanKind.INTERNAL,
          links,
          ...(Number.isFinite(started) ? { startTime: started } : {}),
          attributes: {
            'sluice.run_id': completion.runId,
            'sluice.run.status': completion.status,
            'sluice.target_version': completion.targetVersion ?? undefined,
            'sluice.tenants.total': completion.counts.total,
            'sluice.tenants.migrated': completion.counts.migrated,
            'sluice.tenants.up_to_date': completion.counts.upToDate,
            'sluice.tenants.failed': completion.counts.failed,
            'sluice.tenants.skipped': completion.counts.skipped,
            'sluice.tenants.rolled_back': completion.counts.rolledBack,
            'sluice.rollback_of': completion.rollbackOf?.runId,
            'sluice.links.omitted': omitted,
          },
        },
        parent,
      );
      if (completion.status === 'failed' || completion.status === 'partial') {
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: completion.error ?? `${completion.counts.failed} tenants failed`,
        });
      }
      span.end();
      this.forget(completion.runId);
    };
  }

  /** Drops what is kept of a run (it completed, here or at another replica). */
  forget(runId: string): void {
    this.runs.delete(runId);
  }

  /** Runs with something kept (tests). */
  get size(): number {
    return this.runs.size;
  }
}

function spanContextOf(msg: Carrier): SpanContext | undefined {
  if (!msg.headers) return undefined;
  return trace.getSpanContext(traceContextOf(msg, ROOT_CONTEXT));
}
