import { type Bus, decodeJson, type JsMsg, publishOutcome, withInProgress } from '@sluice/bus';
import { failedOutcome, type OutcomeSource, type TenantOutcome, tenantOutcome, type TenantTask, TenantTaskSchema } from '@sluice/contracts';
import { type MigrationSet, SluiceError, toOutcomeError } from '@sluice/core';
import { connectTenant, type MigrationReport, TenantMigrator } from '@sluice/migrator';
import type { Logger } from '@sluice/telemetry';

import { AttemptTimings } from './attempt-timings.js';
import type { ExecutorConfig } from './config.js';
import { type MigrationSets, singleMigrationSet } from './migration-sets.js';
import { retryDelayMs } from './retry-policy.js';

export interface TaskHandlerDeps {
  bus: Bus;
  /** The sets runs may ask for, by digest (bundles); a plain set serves only its own digest. */
  migrations: MigrationSet | MigrationSets;
  logger: Logger;
  config: Pick<
    ExecutorConfig,
    'executorId' | 'maxAttempts' | 'retryBaseMs' | 'retryMaxMs' | 'ackWaitMs' | 'lockTimeoutMs' | 'statementTimeoutMs' | 'connectTimeoutMs'
  > &
    Partial<Pick<ExecutorConfig, 'concurrency'>>;
  /** Milliseconds of [from, to] during which a host's breaker was open (queued time charged to the host). */
  breakerOpenMs?: (host: string, from: number, to: number) => number;
  /** Replaces the Postgres work (default: connect with `pg` and run the migration set). */
  tenantWork?: TenantWork;
}

/** The work of one tenant: connect, migrate, disconnect. A port, so a benchmark can measure the pipeline without databases. */
export type TenantWork = (task: TenantTask, migrations: MigrationSet) => Promise<{ report: MigrationReport; connectMs: number }>;

/** What became of one delivery, for the scheduler's limiter and breaker. */
export interface TaskResult {
  /** `done`: an outcome was published; `retry`: put back for a later attempt; `dropped`: unusable message. */
  settled: 'done' | 'retry' | 'dropped';
  /** The error of this attempt, when there was one. */
  error?: unknown;
  /** Time spent on the tenant (connect to unlock). */
  durationMs: number;
  /** The outcome published, when `settled` is `done`. */
  outcome?: TenantOutcome;
}

/** Runs a tenant's work on its host; the scheduler passes the host's circuit breaker here. */
export type HostGuard = <T>(host: string, work: () => Promise<T>) => Promise<T>;

const unguarded: HostGuard = (_host, work) => work();

/**
 * Migrates the tenant of one task and settles the message:
 * success or a permanent error -> an outcome is published, then the task is acked;
 * a transient error -> nak with backoff, until the last attempt, which fails the tenant.
 */
export function createTaskHandler(deps: TaskHandlerDeps) {
  const { bus, logger, config } = deps;
  const sets = 'forDigest' in deps.migrations ? deps.migrations : singleMigrationSet(deps.migrations, config.executorId);
  const timings = new AttemptTimings();
  const breakerOpenMs = deps.breakerOpenMs ?? (() => 0);

  const postgresWork: TenantWork = async (task, migrations) => {
    const t0 = performance.now();
    const client = await connectTenant({
      databaseUrl: task.databaseUrl,
      host: task.host,
      connectTimeoutMs: config.connectTimeoutMs,
      lockTimeoutMs: config.lockTimeoutMs,
      statementTimeoutMs: config.statementTimeoutMs,
      // Names the replica and run in pg_stat_activity (63 characters at most).
      applicationName: `sluice-executor:${config.executorId}:${task.runId}`.slice(0, 63),
    });
    const connectMs = performance.now() - t0;
    try {
      const report = await new TenantMigrator(client, migrations, task.host).migrate({
        targetVersion: task.target,
        runId: task.runId,
        executorId: config.executorId,
        dryRun: task.dryRun,
      });
      return { report, connectMs };
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  const tenantWork = deps.tenantWork ?? postgresWork;

  async function migrateTenant(task: TenantTask, attempt: number, migrations: MigrationSet): Promise<TenantOutcome> {
    const started = performance.now();
    const { report, connectMs } = await tenantWork(task, migrations);
    return tenantOutcome(sourceOf(task, attempt), {
      status: report.status,
      applied: report.applied,
      fromVersion: report.fromVersion,
      toVersion: report.toVersion,
      timings: { connectMs, ...report.timings, totalMs: performance.now() - started },
    });
  }

  /** This executor, settling a tenant after `attempt` deliveries. */
  function sourceOf(task: Pick<TenantTask, 'runId' | 'tenantId' | 'host'>, attempt: number): OutcomeSource {
    return { runId: task.runId, tenantId: task.tenantId, host: task.host, executorId: config.executorId, ...(config.concurrency ? { executorSlots: config.concurrency } : {}), attempts: attempt };
  }

  return async function handleTask(msg: JsMsg, guard: HostGuard = unguarded): Promise<TaskResult> {
    const attempt = msg.info.deliveryCount;
    const started = performance.now();
    let raw: unknown;
    try {
      raw = decodeJson(msg.data);
    } catch (error) {
      logger.error({ err: error, subject: msg.subject }, 'task is not JSON; dropped');
      msg.term();
      return { settled: 'dropped', durationMs: 0 };
    }
    const parsed = TenantTaskSchema.safeParse(raw);
    if (!parsed.success) {
      const r = raw as Partial<TenantTask> | null;
      logger.error({ runId: r?.runId, tenantId: r?.tenantId, issues: parsed.error.issues.slice(0, 5) }, 'malformed task');
      if (typeof r?.runId === 'string' && typeof r.tenantId === 'string') {
        await publishOutcome(bus, failedOutcome(sourceOf({ runId: r.runId, tenantId: r.tenantId, host: '' }, attempt), toOutcomeError(new Error(`malformed task: ${parsed.error.issues[0]?.message ?? 'invalid'}`))));
      }
      msg.term();
      return { settled: 'dropped', durationMs: 0 };
    }
    const task = parsed.data;
    // Made only when something is logged: a child logger per task costs (its bindings are redacted).
    let child: Logger | undefined;
    const log = (): Logger => (child ??= logger.child({ runId: task.runId, tenantId: task.tenantId, host: task.host, attempt }));

    const key = `${task.runId}:${task.tenantId}`;
    const plannedAt = Date.parse(task.plannedAt);
    timings.begin({ key, now: Date.now(), plannedAt: Number.isFinite(plannedAt) ? plannedAt : Date.now(), breakerOpenMs: (from, to) => breakerOpenMs(task.host, from, to) });

    let outcome: TenantOutcome;
    let failure: unknown;
    try {
      const migrations = await sets.forDigest(task.digest);
      outcome = await withInProgress(msg, config.ackWaitMs, () => guard(task.host, () => migrateTenant(task, attempt, migrations)));
    } catch (error) {
      failure = error;
      const transient = error instanceof SluiceError ? error.transient : false;
      if (transient && attempt < config.maxAttempts) {
        const delay = retryDelayMs(attempt, config.retryBaseMs, config.retryMaxMs);
        log().warn({ err: error, code: (error as SluiceError).code, retryInMs: delay }, 'transient failure; task put back');
        const durationMs = performance.now() - started;
        timings.retry(key, durationMs, error, Date.now());
        msg.nak(delay);
        return { settled: 'retry', error, durationMs };
      }
      log().warn({ err: error, code: error instanceof SluiceError ? error.code : 'internal' }, 'tenant failed');
      outcome = failedOutcome(sourceOf(task, attempt), toOutcomeError(error));
    }
    const workMs = performance.now() - started;
    outcome.timings = { ...outcome.timings, ...timings.settle(key, workMs), totalMs: outcome.timings?.totalMs ?? workMs };
    await publishOutcome(bus, outcome);
    msg.ack();
    if (logger.isLevelEnabled('debug')) log().debug({ status: outcome.status, applied: outcome.applied }, 'tenant settled');
    return { settled: 'done', ...(failure === undefined ? {} : { error: failure }), durationMs: performance.now() - started, outcome };
  };
}
