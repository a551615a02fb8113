import {
  type Bus,
  decodeJson,
  ensureHostConsumer,
  ensureLedgerStream,
  type FleetStore,
  type JsMsg,
  MalformedMessageError,
  PlannedLedger,
  publishOnce,
  publishOutcome,
  publishReliably,
  PublishWindow,
  type RunClaims,
  withInProgress,
} from '@sluice/bus';
import {
  failedOutcome,
  isTenantId,
  type MigrateRequest,
  REJECTED_SUBJECT,
  type RejectedEvent,
  type RunAcceptedEvent,
  runEventMsgId,
  runEventSubject,
  type RunPlannedEvent,
  skippedOutcome,
  taskMsgId,
  taskSubject,
  type TenantOutcome,
  tenantOutcome,
  type TenantTask,
} from '@sluice/contracts';
import {
  InvalidTenantError,
  type MigrationSet,
  parseTenantRow,
  TenantNotFoundError,
  trustsFleetRecord,
} from '@sluice/core';
import type { RegistryRow, TenantRegistry } from '@sluice/registry';
import type { Logger } from '@sluice/telemetry';

import { hostLimitFor, type HostLimits } from './config.js';
import type { LintGate } from './lint-gate.js';
import { requestFingerprint, validateRequest } from './request-validation.js';
import { busRunEventLookup, rollbackScope, type RunEventLookup } from './rollback-request.js';
import { activeTraceId, annotateRun, traceRequest, traceTaskPublish } from './run-tracing.js';

/** Tasks published together (see `planTenants`): well under the publish window (512 by default). */
const TASK_BATCH = 64;
/** Longest a task waits for its batch to fill while the registry reads its next page. */
const TASK_LINGER_MS = 5;

export interface PlannerDeps {
  bus: Bus;
  registry: TenantRegistry;
  /** The runId claims (`sluice_runs`): a request is planned once per runId. */
  claims: RunClaims;
  migrations: MigrationSet;
  logger: Logger;
  publishWindow: number;
  registryRetryMs: number;
  /** Ack wait of the request consumer, for in-progress heartbeats while a large run is planned. */
  ackWaitMs: number;
  /** Per-host concurrency limits, set on each host's consumer. */
  hostLimits: HostLimits;
  /** Ack wait of the per-host task consumers. */
  taskAckWaitMs: number;
  /** Deliveries of a task before the server stops (the executors' SLUICE_MAX_ATTEMPTS); -1: no bound. */
  maxDeliveries?: number;
  /** Told how each request ended (metrics). */
  observer?: PlannerObserver;
  /** Lints the set before a run is claimed (absent: no gate, as in tests of planning alone). */
  lint?: LintGate;
  /** Where a rollback reads the run it undoes (default: the run events on the bus). */
  runEvents?: RunEventLookup;
  /** Tenants' fleet records, read by `trust: "fleet-state"` runs (absent: every run is verified). */
  fleet?: Pick<FleetStore, 'get'>;
}

/** What the planner tells about each request it handles. */
export interface PlannerObserver {
  /** A request was rejected (malformed, invalid, or its runId taken by another request). */
  rejected(): void;
  /** A run's planning ended, with its summary or the error it gave up with, after `ms`. */
  planned(result: PlanSummary | { error: string }, ms: number): void;
}

export interface PlanSummary {
  total: number;
  tasks: number;
  skipped: number;
  invalid: number;
  /** Staged rollouts: tasks marked `canary`. */
  canaries?: number;
  /** `trust: "fleet-state"` runs: tenants settled `upToDate` from their fleet record, with no task. */
  fromFleetState?: number;
}

/**
 * Turns one migration request into one task per tenant. Idempotent end to end: the runId is
 * claimed in the run claims bucket, and every task and planner-made outcome carries a message id, so a
 * planner that dies midway and plans again publishes nothing twice.
 */
export function createPlanner(deps: PlannerDeps) {
  const { bus, logger, migrations } = deps;
  const runEvents = deps.runEvents ?? busRunEventLookup(bus);
  let ledgerStream: Promise<void> | undefined;
  /** The task ledger stream, created once per planner. */
  const ledgerReady = (): Promise<void> =>
    (ledgerStream ??= ensureLedgerStream(bus.jsm).catch((error: unknown) => {
      ledgerStream = undefined;
      throw error;
    }));

  async function reject(
    runId: string | undefined,
    reasons: string[],
    code?: Pick<RejectedEvent, 'reason' | 'lint'>,
  ): Promise<void> {
    const event: RejectedEvent = {
      ...(runId ? { runId } : {}),
      reasons,
      ...code,
      rejectedAt: new Date().toISOString(),
    };
    logger.warn({ runId, reasons }, 'request rejected');
    deps.observer?.rejected();
    annotateRun({ runId, outcome: 'rejected' });
    await publishReliably(bus, REJECTED_SUBJECT, event);
  }

  async function planTenants(request: MigrateRequest, targetVersion: number): Promise<PlanSummary> {
    const runId = request.runId;
    const plannedAt = new Date().toISOString();
    const window = new PublishWindow(deps.publishWindow);
    // Ledger entries in batches: one message per batch of published tasks, not one per tenant.
    const ledger = new PlannedLedger(bus, runId);
    const summary: PlanSummary = { total: 0, tasks: 0, skipped: 0, invalid: 0 };
    // Staged rollout: the first `canary` tenants go first; the fleet's tasks wait for them.
    const canaryCount = request.rollout?.canary ?? 0;
    if (canaryCount > 0) summary.canaries = 0;
    const trusting = request.trust === 'fleet-state' && deps.fleet !== undefined;
    if (trusting) summary.fromFleetState = 0;
    await ledgerReady();

    const settle = (outcome: TenantOutcome): Promise<void> => window.submit(() => publishOutcome(bus, outcome));
    const invalidOutcome = (key: string, reason: string): TenantOutcome => {
      summary.invalid += 1;
      return failedOutcome({ runId, tenantId: key, attempts: 0 }, new InvalidTenantError(reason).toOutcomeError());
    };
    const invalid = (key: string, reason: string): Promise<void> => settle(invalidOutcome(key, reason));

    // Each host's consumer (and its limit) is set up before the host's first task of the run.
    const hosts = new Set<string>();
    // Tenants this pass has planned a task for. A second row with one of their ids is a duplicate
    // row; a duplicate ack alone is not one: another planner may have published the task first
    // (chaos seed 14: a planner frozen mid-plan woke after a second one had planned the run again,
    // and took 22 of its tasks for duplicate rows; 201 tenants counted of 200). One entry per task.
    const planned = new Set<string>();
    // Ids the request named and the registry has not shown yet: each left at the end fails.
    const unseen = new Set(request.tenants && 'ids' in request.tenants ? request.tenants.ids : []);
    // Tasks are published TASK_BATCH at a time, all in one turn: the client then writes them to
    // the socket together. One at a time, each row's await let the client flush between them —
    // a socket write per task (500 a run of 500 tenants, seen with strace). A batch the registry
    // does not fill within TASK_LINGER_MS (it is between pages) goes out as it is.
    let batch: Array<() => Promise<void>> = [];
    let lingering: NodeJS.Timeout | undefined;
    const publishBatch = async (): Promise<void> => {
      clearTimeout(lingering);
      lingering = undefined;
      const jobs = batch;
      batch = [];
      if (jobs.length > 0) await window.submitAll(jobs);
    };
    // A failed publish is kept by the window and thrown by its drain below.
    const publishSoon = (): void => {
      lingering ??= setTimeout(() => void publishBatch().catch(() => undefined), TASK_LINGER_MS);
    };
    let index = 0;
    for await (const row of deps.registry.list(request.tenants)) {
      index += 1;
      summary.total += 1;
      const rowKey = rowKeyOf(row, index);
      if (typeof row === 'object' && row !== null && typeof row.tenantId === 'string') unseen.delete(row.tenantId);
      // A port may hand over anything; a non-object is one bad row, not a crashed plan.
      if (typeof row !== 'object' || row === null) {
        await invalid(rowKey, 'registry row is not an object');
        continue;
      }
      if (typeof row.__invalid === 'string') {
        await invalid(rowKey, row.__invalid);
        continue;
      }
      let tenant;
      try {
        tenant = parseTenantRow(row);
      } catch (error) {
        await invalid(rowKey, (error as Error).message);
        continue;
      }
      if (planned.has(tenant.tenantId)) {
        await invalid(rowKey, `duplicate tenantId ${tenant.tenantId} in the registry (row ${index})`);
        continue;
      }
      if (tenant.status === 'suspended') {
        summary.skipped += 1;
        await settle(skippedOutcome({ runId, tenantId: tenant.tenantId, attempts: 0 }));
        continue;
      }
      planned.add(tenant.tenantId);
      const task: TenantTask = {
        runId,
        tenantId: tenant.tenantId,
        databaseUrl: tenant.databaseUrl,
        host: tenant.host,
        target: targetVersion,
        digest: migrations.digest,
        dryRun: request.dryRun ?? false,
        plannedAt,
        ...(request.rollback
          ? { rollbackOf: request.rollback.runId, ...(request.rollback.force ? { force: true } : {}) }
          : {}),
        ...(request.allowChangedDown ? { allowChangedDown: true } : {}),
        ...(Object.keys(tenant.tags).length > 0 ? { tags: tenant.tags } : {}),
      };
      // A canary must be a tenant that runs: while canaries are still being chosen, the fleet state
      // is asked first (one tenant at a time), so a trusted tenant never takes a canary's place.
      const trustChecked = trusting && summary.canaries !== undefined && summary.canaries < canaryCount;
      if (trustChecked && (await settledFromFleetState(task))) {
        summary.fromFleetState = (summary.fromFleetState ?? 0) + 1;
        continue;
      }
      if (summary.canaries !== undefined) {
        task.stage = summary.canaries < canaryCount ? 'canary' : 'fleet';
        if (task.stage === 'canary') summary.canaries += 1;
      }
      if (!hosts.has(tenant.host)) {
        await ensureHostConsumer(
          bus.jsm,
          tenant.host,
          hostLimitFor(deps.hostLimits, tenant.host, request.maxPerHost),
          deps.taskAckWaitMs,
          deps.maxDeliveries,
        );
        hosts.add(tenant.host);
      }
      summary.tasks += 1;
      const tenantId = tenant.tenantId;
      const subject = taskSubject(tenant.host);
      batch.push(async () => {
        if (trusting && !trustChecked && (await settledFromFleetState(task))) {
          summary.tasks -= 1;
          summary.fromFleetState = (summary.fromFleetState ?? 0) + 1;
          if (task.stage === 'canary' && summary.canaries !== undefined) summary.canaries -= 1;
          return;
        }
        const ack = await traceTaskPublish(task, subject, () =>
          publishReliably(bus, subject, task, { msgId: taskMsgId(runId, tenantId) }),
        );
        // A duplicate ack is a task an earlier or concurrent plan of this run published, not a
        // duplicate row (those are caught above).
        // The task ledger lets the reporter publish a lost task again (it cannot read the work queue).
        await ledger.add({ task, taskSeq: ack.seq });
      });
      if (batch.length >= TASK_BATCH) await publishBatch();
      else publishSoon();
    }
    await publishBatch();
    for (const tenantId of unseen) {
      summary.total += 1;
      summary.invalid += 1;
      const error = new TenantNotFoundError(`tenant ${tenantId} is not in the registry`);
      await settle(failedOutcome({ runId, tenantId, attempts: 0 }, error.toOutcomeError()));
    }
    await window.drain();
    await ledger.drain();
    return summary;
  }

  /**
   * A `trust: "fleet-state"` run settles a tenant `upToDate` without a task when its fleet record
   * shows the run's target and digest, `current`, on the same host. An unreadable record is no
   * reason to skip a tenant: it gets its task.
   */
  async function settledFromFleetState(task: TenantTask): Promise<boolean> {
    let record;
    try {
      record = await deps.fleet?.get(task.tenantId);
    } catch (error) {
      logger.warn(
        { runId: task.runId, tenantId: task.tenantId, err: error },
        'fleet record unreadable; tenant verified',
      );
      return false;
    }
    if (!trustsFleetRecord(record, { digest: task.digest, targetVersion: task.target, host: task.host })) return false;
    await publishOutcome(
      bus,
      tenantOutcome(
        {
          runId: task.runId,
          tenantId: task.tenantId,
          host: task.host,
          attempts: 0,
          ...(task.tags ? { tags: task.tags } : {}),
        },
        {
          status: 'upToDate',
          applied: [],
          fromVersion: record.version,
          toVersion: record.version,
          from: 'fleet-state',
        },
      ),
    );
    return true;
  }

  async function planWithRetry(
    request: MigrateRequest,
    targetVersion: number,
  ): Promise<PlanSummary | { error: string }> {
    const deadline = Date.now() + deps.registryRetryMs;
    let delay = 500;
    for (;;) {
      try {
        return await planTenants(request, targetVersion);
      } catch (error) {
        const message = (error as Error).message;
        if (Date.now() + delay > deadline) {
          logger.error({ runId: request.runId, err: error }, 'planning failed; giving up');
          return { error: `planning failed: ${message}` };
        }
        logger.warn({ runId: request.runId, err: error, retryInMs: delay }, 'planning failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /** Handles one message from the requests stream, in the run's root span. Never throws for bad input. */
  const handleRequest = (msg: JsMsg): Promise<void> => traceRequest(msg, () => takeRequest(msg));

  async function takeRequest(msg: JsMsg): Promise<void> {
    let raw: unknown;
    try {
      raw = decodeJson(msg.data);
    } catch (error) {
      if (!(error instanceof MalformedMessageError)) throw error;
      await reject(undefined, [error.message.slice(0, 500)]);
      msg.ack();
      return;
    }
    const validation = validateRequest(raw, migrations);
    if (!validation.ok) {
      await reject(validation.runId, validation.reasons);
      msg.ack();
      return;
    }
    const { targetVersion } = validation;
    let { request } = validation;
    const runId = request.runId;
    if (request.rollback) {
      const scope = await rollbackScope(request, runEvents);
      if (!scope.ok) {
        await reject(runId, scope.reasons);
        msg.ack();
        return;
      }
      // The undone run's tenants, unless the request narrows them: planned like any selector.
      const { tenants: _asked, ...rest } = request;
      request = { ...rest, ...(scope.tenants ? { tenants: scope.tenants } : {}) };
    }
    // Before the claim: a request rejected for lint leaves its runId free for a fixed set or `lint: "warn"`.
    const lint = deps.lint?.judge(request, migrations);
    if (lint && !lint.ok) {
      await reject(runId, lint.reasons, { reason: 'lint', lint: lint.report });
      msg.ack();
      return;
    }
    const claim = await deps.claims.claim(runId, requestFingerprint(validation.request, targetVersion));
    annotateRun({ runId, targetVersion, dryRun: request.dryRun ?? false, outcome: claim.kind });
    if (claim.kind === 'duplicate') {
      logger.info({ runId }, 'request repeats an existing run; nothing to do');
      msg.ack();
      return;
    }
    if (claim.kind === 'conflict') {
      await reject(runId, [`runId ${runId} is already used by a different request`]);
      msg.ack();
      return;
    }
    const accepted: RunAcceptedEvent = {
      runId,
      target: request.target ?? 0,
      targetVersion,
      ...(request.rollback
        ? { rollbackOf: { runId: request.rollback.runId, force: request.rollback.force ?? false } }
        : {}),
      digest: migrations.digest,
      dryRun: request.dryRun ?? false,
      ...(request.tenants ? { tenants: request.tenants } : {}),
      ...(request.requestedBy ? { requestedBy: request.requestedBy } : {}),
      ...(request.rollout ? { rollout: request.rollout } : {}),
      ...(lint?.report ? { lint: lint.report } : {}),
      ...(request.trust === 'fleet-state' ? { trust: 'fleet-state' as const } : {}),
      ...(request.audit ? { audit: request.audit } : {}),
      acceptedAt: new Date().toISOString(),
    };
    const traceId = activeTraceId();
    if (traceId) accepted.traceId = traceId;
    // Once per run, like `completed`: a resumed plan (a planner died mid-plan) finds the subject
    // taken and publishes nothing — a stream-level check, not the duplicate window.
    await publishOnce(bus, runEventSubject(runId, 'accepted'), accepted, { msgId: runEventMsgId(runId, 'accepted') });
    logger.info({ runId, targetVersion, resume: claim.kind === 'resume' }, 'planning run');

    const started = performance.now();
    const result = await withInProgress(msg, deps.ackWaitMs, () => planWithRetry(request, targetVersion));
    const planned: RunPlannedEvent =
      'error' in result
        ? {
            runId,
            total: 0,
            tasks: 0,
            skipped: 0,
            invalid: 0,
            error: result.error,
            plannedAt: new Date().toISOString(),
          }
        : { runId, ...result, plannedAt: new Date().toISOString() };
    await publishOnce(bus, runEventSubject(runId, 'planned'), planned, { msgId: runEventMsgId(runId, 'planned') });
    await deps.claims.markPlanned(runId);
    msg.ack();
    deps.observer?.planned(result, performance.now() - started);
    logger.info({ ...planned, ms: Math.round(performance.now() - started) }, 'run planned');
  }

  return { handleRequest, planTenants };
}

export type Planner = ReturnType<typeof createPlanner>;

/** The outcome key of a registry row that cannot be a tenant: its tenantId if usable, else its position. */
function rowKeyOf(row: RegistryRow, index: number): string {
  const id = (row as RegistryRow | null)?.tenantId;
  // An id that breaks the tenantId rule (CR/LF, wildcards, 2,000 characters) never becomes part of a key.
  return isTenantId(id) ? `${id}#${index}` : `#${index}`;
}
