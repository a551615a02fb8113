import { EventEmitter } from 'node:events';

import { type Bus, decodeJson, type JsMsg, publishOutcome, withInProgress } from '@sluice/bus';
import {
  failedOutcome,
  type OutcomeSource,
  parseTaskSubject,
  type TenantOutcome,
  tenantOutcome,
  type TenantTask,
  TenantTaskSchema,
} from '@sluice/contracts';
import { type MigrationSet, SluiceError, toOutcomeError } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

import { AttemptTimings } from './attempt-timings.js';
import type { ExecutorConfig } from './config.js';
import { inDeliverySpan, startDeliverySpan } from './delivery-span.js';
import type { ExecutorLoadSample } from './executor-load.js';
import type { HostBreakers } from './host-breakers.js';
import { type MigrationSets, singleMigrationSet } from './migration-sets.js';
import { publishOutcomeHolding } from './outcome-holder.js';
import { retryDelayMs } from './retry-policy.js';
import type { GateVerdict, RunGate } from './run-gate.js';
import type { TenantWork } from './tenant-work.js';

/** What became of one delivery, for the scheduler's limiter and the metrics. */
export interface DeliveryResult {
  /**
   * `done`: an outcome was published and the task acked; `retry`: put back (nak) for a later
   * attempt; `dropped`: acked or terminated without an outcome of ours (unusable, parked, or
   * skipped by the run gate, which publishes its own).
   */
  settled: 'done' | 'retry' | 'dropped';
  /** The error of this attempt, when there was one. */
  error?: unknown;
  /** Time spent on the tenant (connect to unlock). */
  durationMs: number;
  /** The outcome published, when `settled` is `done`. */
  outcome?: TenantOutcome;
}

/** What a delivery tells its listeners (metrics), in the order it happens. */
export interface DeliveryEvents {
  /** The tenant's work passed its host's breaker: a connection to the host is opening. */
  workStarted: [host: string];
  /** The tenant's work ended (its connection is closed), however it ended. */
  workEnded: [host: string];
  /** A delivery settled; `host` is the one its subject names. */
  settled: [host: string, result: DeliveryResult];
}

export interface DeliveryDeps {
  bus: Bus;
  logger: Logger;
  config: Pick<ExecutorConfig, 'executorId' | 'maxAttempts' | 'retryBaseMs' | 'retryMaxMs' | 'ackWaitMs'> &
    Partial<Pick<ExecutorConfig, 'concurrency'>>;
  /** The sets runs may ask for, by digest (bundles); a plain set serves only its own digest. */
  migrations: MigrationSet | MigrationSets;
  /** The tenant's work (Postgres, or a benchmark's no-op). */
  tenantWork: TenantWork;
  /** Decides whether a task's run lets it start. None: every task starts. */
  gate?: Pick<RunGate, 'check'>;
  /** The hosts' circuit breakers: the work runs through them, and their open time is charged to the host. None: unguarded. */
  breakers?: Pick<HostBreakers, 'run' | 'openMs'>;
  /**
   * The replica's load and its adaptive limit per host, added to each outcome's `signals` with
   * what the tenant's work reported. None: outcomes carry only the work's signals.
   */
  signals?: {
    load: () => ExecutorLoadSample;
    hostLimit: (host: string) => number | undefined;
  };
  /**
   * How a settled or parked task is acknowledged; default at once (`msg.ack()`). The executor
   * passes its `AckBatcher`, which sends acks with the next pull request.
   */
  ack?: (msg: JsMsg) => void;
}

export interface Delivery {
  /** Handles one task message from decoding to ack/nak/term; resolves with what became of it. */
  readonly handle: (msg: JsMsg) => Promise<DeliveryResult>;
  readonly events: EventEmitter<DeliveryEvents>;
}

type Decoded =
  { task: TenantTask; raw: unknown } | { task?: undefined; raw: unknown; problem: string; issues?: unknown[] };

const GATED_RESULT = (verdict: Exclude<GateVerdict, { action: 'proceed' }>): DeliveryResult => ({
  // Gated tasks were not attempted: no error, so the host's limiter is left alone.
  settled: verdict.action === 'defer' ? 'retry' : 'dropped',
  durationMs: 0,
});

/**
 * The executor's path for one task delivery, top to bottom:
 *
 * 1. **decode** the message, once (not JSON: terminated; not a task: its run and tenant, when it
 *    names them, get a `failed` outcome, then terminated);
 * 2. **gate**: the run's control state says start, park (ack) or skip (ack; the gate published the
 *    `skipped` outcome), or defer (nak) when the gate could not record its decision;
 * 3. **migrate** the tenant through its host's breaker, with in-progress heartbeats: load the run's
 *    migration set by digest, connect, migrate, disconnect;
 * 4. **settle**: publish the outcome, then ack — or, for a transient error before the last
 *    attempt, nak with backoff (the tenant's time is kept for its next attempt).
 *
 * Each delivery runs in its own trace span; listeners of `events` (metrics) hear of the work on
 * each host and of every settled delivery.
 */
export function createDelivery(deps: DeliveryDeps): Delivery {
  const { bus, logger, config, gate, breakers, tenantWork, signals } = deps;
  const ack = deps.ack ?? ((msg: JsMsg): void => msg.ack());
  const sets =
    'forDigest' in deps.migrations ? deps.migrations : singleMigrationSet(deps.migrations, config.executorId);
  const timings = new AttemptTimings();
  const events = new EventEmitter<DeliveryEvents>();

  async function handle(msg: JsMsg): Promise<DeliveryResult> {
    const decoded = decode(msg);
    const span = startDeliverySpan(msg, decoded.raw as Record<string, unknown> | undefined);
    let result: DeliveryResult;
    try {
      result = await inDeliverySpan(span, () => deliver(msg, decoded));
    } catch (error) {
      span.fail(error);
      throw error;
    }
    span.end(result);
    events.emit('settled', parseTaskSubject(msg.subject) ?? '', result);
    return result;
  }

  async function deliver(msg: JsMsg, decoded: Decoded): Promise<DeliveryResult> {
    const attempt = msg.info.deliveryCount;
    if (!decoded.task) return dropUnusable(msg, decoded, attempt);
    const task = decoded.task;

    const verdict = gate ? await gate.check(task, { streamSeq: msg.seq }) : { action: 'proceed' as const };
    if (verdict.action !== 'proceed') {
      if (verdict.action === 'defer') msg.nak(verdict.delayMs);
      else ack(msg);
      return GATED_RESULT(verdict);
    }

    const started = performance.now();
    const key = `${task.runId}:${task.tenantId}`;
    const plannedAt = Date.parse(task.plannedAt);
    timings.begin({
      key,
      now: Date.now(),
      plannedAt: Number.isFinite(plannedAt) ? plannedAt : Date.now(),
      breakerOpenMs: (from, to) => breakers?.openMs(task.host, from, to) ?? 0,
    });
    let outcome: TenantOutcome;
    let failure: unknown;
    try {
      outcome = await migrate(msg, task, attempt);
    } catch (error) {
      failure = error;
      const transient = error instanceof SluiceError ? error.transient : false;
      if (transient && attempt < config.maxAttempts) {
        const delay = retryDelayMs(attempt, config.retryBaseMs, config.retryMaxMs);
        logOf(task, attempt).warn(
          { err: error, code: (error as SluiceError).code, retryInMs: delay },
          'transient failure; task put back',
        );
        const durationMs = performance.now() - started;
        timings.retry(key, durationMs, error, Date.now());
        msg.nak(delay);
        return { settled: 'retry', error, durationMs };
      }
      logOf(task, attempt).warn(
        { err: error, code: error instanceof SluiceError ? error.code : 'internal' },
        'tenant failed',
      );
      outcome = failedOutcome(sourceOf(task, attempt), toOutcomeError(error));
    }

    const workMs = performance.now() - started;
    outcome.timings = {
      ...outcome.timings,
      ...timings.settle(key, workMs),
      totalMs: outcome.timings?.totalMs ?? workMs,
    };
    await publishOutcomeHolding(bus, msg, outcome, logger, { ackWaitMs: config.ackWaitMs });
    ack(msg);
    if (logger.isLevelEnabled('debug'))
      logOf(task, attempt).debug({ status: outcome.status, applied: outcome.applied }, 'tenant settled');
    return {
      settled: 'done',
      ...(failure === undefined ? {} : { error: failure }),
      durationMs: performance.now() - started,
      outcome,
    };
  }

  /** Step 1: the message as a task, or why it is none. */
  function decode(msg: JsMsg): Decoded {
    let raw: unknown;
    try {
      raw = decodeJson(msg.data);
    } catch (error) {
      return { raw: undefined, problem: (error as Error).message };
    }
    const parsed = TenantTaskSchema.safeParse(raw);
    return parsed.success
      ? { task: parsed.data, raw }
      : {
          raw,
          problem: `malformed task: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
          issues: parsed.error.issues.slice(0, 5),
        };
  }

  /** A message that is no task: reported when it names its run and tenant, then terminated (never redelivered). */
  async function dropUnusable(
    msg: JsMsg,
    decoded: Exclude<Decoded, { task: TenantTask }>,
    attempt: number,
  ): Promise<DeliveryResult> {
    const r = decoded.raw as Partial<TenantTask> | null | undefined;
    if (decoded.raw === undefined) {
      logger.error({ subject: msg.subject, problem: decoded.problem }, 'task is not JSON; dropped');
    } else {
      logger.error({ runId: r?.runId, tenantId: r?.tenantId, issues: decoded.issues }, 'malformed task');
      if (typeof r?.runId === 'string' && typeof r.tenantId === 'string') {
        await publishOutcome(
          bus,
          failedOutcome(
            sourceOf({ runId: r.runId, tenantId: r.tenantId, host: '' }, attempt),
            toOutcomeError(new Error(decoded.problem)),
          ),
        );
      }
    }
    msg.term();
    return { settled: 'dropped', durationMs: 0 };
  }

  /** Step 3: the run's migration set, then the tenant's work through its host's breaker, with heartbeats. */
  async function migrate(msg: JsMsg, task: TenantTask, attempt: number): Promise<TenantOutcome> {
    const migrations = await sets.forDigest(task.digest);
    return withInProgress(msg, config.ackWaitMs, () =>
      throughBreaker(task.host, async () => {
        const started = performance.now();
        const work = await tenantWork(task, migrations, {
          streamSeq: msg.seq,
          deliveryCount: attempt,
        });
        const { report, connectMs } = work;
        const limit = signals?.hostLimit(task.host);
        return tenantOutcome(sourceOf(task, attempt), {
          ...(work.signals || signals
            ? {
                signals: {
                  ...work.signals,
                  ...signals?.load(),
                  ...(limit !== undefined ? { hostLimit: limit } : {}),
                },
              }
            : {}),
          status: report.status,
          applied: report.applied,
          ...(report.rolledBack ? { rolledBack: report.rolledBack } : {}),
          fromVersion: report.fromVersion,
          toVersion: report.toVersion,
          timings: { connectMs, ...report.timings, totalMs: performance.now() - started },
        });
      }),
    );
  }

  /** Runs work on a host through its breaker, telling listeners while it holds a connection there. */
  function throughBreaker<T>(host: string, work: () => Promise<T>): Promise<T> {
    const counted = async (): Promise<T> => {
      events.emit('workStarted', host);
      try {
        return await work();
      } finally {
        events.emit('workEnded', host);
      }
    };
    return breakers ? breakers.run(host, counted) : counted();
  }

  /** This executor, settling a tenant after `attempt` deliveries. */
  function sourceOf(
    task: Pick<TenantTask, 'runId' | 'tenantId' | 'host'> & { tags?: Record<string, string> },
    attempt: number,
  ): OutcomeSource {
    return {
      runId: task.runId,
      tenantId: task.tenantId,
      host: task.host,
      ...(task.tags ? { tags: task.tags } : {}),
      executorId: config.executorId,
      ...(config.concurrency ? { executorSlots: config.concurrency } : {}),
      attempts: attempt,
    };
  }

  // A child logger per task costs (its bindings are redacted): made only when something is logged.
  function logOf(task: TenantTask, attempt: number): Logger {
    return logger.child({ runId: task.runId, tenantId: task.tenantId, host: task.host, attempt });
  }

  return { handle, events };
}
