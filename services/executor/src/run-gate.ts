import {
  appendLedger,
  type Bus,
  ensureLedgerStream,
  publishOutcome,
  type RunControlView,
  watchRunControl,
} from '@sluice/bus';
import { gateDecision, type SkipCode, skippedOutcome, type TenantTask } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

/**
 * What to do with a delivered task before its tenant is started.
 * - `proceed`: migrate the tenant.
 * - `parked`: the run is paused, or the task is a fleet task waiting for its canaries. The task is
 *   in the run's task ledger; acknowledge the message — the reporter publishes the task again when
 *   the run may go on.
 * - `skipped`: the run is cancelled, stopped by its rollout, or finished. A `skipped` outcome has been
 *   published; acknowledge the message.
 * - `defer`: the gate could not record its decision (NATS trouble). Nak the message with `delayMs`.
 */
export type GateVerdict =
  | { action: 'proceed' }
  | { action: 'parked'; reason: 'paused' | 'canary' }
  | { action: 'skipped'; code: SkipCode; reason: string }
  | { action: 'defer'; delayMs: number; error: unknown };

export interface RunGateDeps {
  bus: Bus;
  logger: Logger;
  /** Recorded in parked ledger entries and skipped outcomes. */
  executorId: string;
  /** Replicas of the ledger stream and control bucket, should this replica create them. */
  replicas?: number;
  /** The control states to obey. Default: a live watch of the `sluice_run_control` bucket. */
  view?: Pick<RunControlView, 'get'> & { stop?(): Promise<void> };
  /** Nak delay when a decision could not be recorded. */
  deferMs?: number;
}

export interface RunGate {
  /** Decides, and records the decision (ledger entry or outcome) when the tenant is not started. */
  check(task: TenantTask, delivery: { streamSeq: number }): Promise<GateVerdict>;
  /**
   * Watches the control bucket anew (after the JetStream store was reset: a watch resumes at its
   * old sequence and would miss every state of the new bucket). True when a watch was restarted.
   */
  rewatch(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * The executor's side of run controls: before a tenant starts, its run's control state (kept in
 * memory from a KV watch, so a check is a map lookup) says whether to start it, park it, or skip it.
 *
 * Pausing never naks: a task of a paused run is acknowledged and parked in the run's task ledger,
 * and the reporter publishes it again on resume (as a new message). So a pause of any length adds
 * nothing to a task's delivery count, which the executor uses as the attempt count
 * (`SLUICE_MAX_ATTEMPTS`), and costs one ledger write per task instead of a redelivery every few
 * seconds. Only `defer` naks, when NATS itself fails — as the handler's own publishes would.
 */
export async function createRunGate(deps: RunGateDeps): Promise<RunGate> {
  const { bus, logger } = deps;
  const deferMs = deps.deferMs ?? 2_000;
  await ensureLedgerStream(bus.jsm, { replicas: deps.replicas ?? 1 });
  const watch = (): Promise<RunControlView> =>
    watchRunControl(bus, { logger, ...(deps.replicas ? { replicas: deps.replicas } : {}) });
  let view: Pick<RunControlView, 'get'> & { stop?(): Promise<void> } = deps.view ?? (await watch());

  async function skip(task: TenantTask, code: SkipCode, reason: string): Promise<void> {
    const outcome = skippedOutcome(
      { runId: task.runId, tenantId: task.tenantId, host: task.host, executorId: deps.executorId, attempts: 0 },
      { code, message: reason },
    );
    // Under the tenant's outcome id: a repeat of an earlier outcome of the tenant is dropped.
    await publishOutcome(bus, outcome, { attempts: 3 });
  }

  return {
    async check(task, delivery) {
      const decision = gateDecision(view.get(task.runId), task);
      if (decision.action === 'proceed') return decision;
      try {
        if (decision.action === 'park') {
          await appendLedger(
            bus,
            task.runId,
            {
              kind: 'parked',
              task,
              taskSeq: delivery.streamSeq,
              reason: decision.reason,
              executorId: deps.executorId,
              at: new Date().toISOString(),
            },
            { attempts: 3 },
          );
          logger.debug({ runId: task.runId, tenantId: task.tenantId, reason: decision.reason }, 'task parked');
          return { action: 'parked', reason: decision.reason };
        }
        await skip(task, decision.code, decision.reason);
        logger.debug({ runId: task.runId, tenantId: task.tenantId, code: decision.code }, 'tenant skipped');
        return { action: 'skipped', code: decision.code, reason: decision.reason };
      } catch (error) {
        logger.warn(
          { err: error, runId: task.runId, tenantId: task.tenantId },
          'run gate could not record its decision; task put back',
        );
        return { action: 'defer', delayMs: deferMs, error };
      }
    },
    async rewatch() {
      if (deps.view) return false;
      const old = view;
      view = await watch();
      // The old watch may be stuck re-creating its consumer on the lost bucket: not waited for long.
      await Promise.race([old.stop?.(), new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      return true;
    },
    async stop() {
      await view.stop?.();
    },
  };
}
