import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type RunCompletedEvent, STREAMS } from '@sluice/contracts';
import { type ServiceProcess, type TenantFleet, untilAnswered } from '@sluice/testkit';

import { outcomesByTenant, subjectCount } from '../faults-support.js';
import { SLOW_VERSION } from './chaos-stack.js';

/** What the checker is given: the databases, the public events, and the processes — nothing of the services' memory. */
export interface CheckInput {
  nc: NatsConnection;
  jsm: JetStreamManager;
  runId: string;
  fleets: TenantFleet[];
  /** Every migration version of the set, in order. */
  versions: number[];
  completed: RunCompletedEvent | undefined;
  /** ms from the last fault healed to the run's `finishedAt`; undefined when it never completed. */
  afterLastHealMs: number | undefined;
  boundMs: number;
  /** Processes that no fault killed: each must still run. */
  unkilled: ServiceProcess[];
  /** Every process of the stack so far (killed ones too): none may log the password. */
  processes: ServiceProcess[];
  password: string;
}

interface TenantTruth {
  tenantId: string;
  complete: boolean;
  dirty: number[];
  /** Versions with more than one journal row, or effects of the slow file other than once per application. */
  doubled: string[];
}

/** Reads each tenant's journal and the slow file's effects: what really happened. */
async function journalTruth(fleet: TenantFleet, runId: string, versions: number[]): Promise<TenantTruth[]> {
  return fleet.eachTenant(async (c, t) => {
    const truth: TenantTruth = { tenantId: t.tenantId, complete: false, dirty: [], doubled: [] };
    const hasJournal = (
      await c.query<{ r: string | null }>("SELECT to_regclass('public.sluice_migrations')::text AS r")
    ).rows[0]!.r;
    if (!hasJournal) return truth;
    const rows = (
      await c.query<{ version: number; status: string; run_id: string | null; n: number }>(
        'SELECT version::int, status, min(run_id) AS run_id, count(*)::int AS n FROM sluice_migrations GROUP BY version, status ORDER BY version',
      )
    ).rows;
    truth.dirty = rows.filter((r) => r.status === 'dirty').map((r) => r.version);
    truth.doubled = rows.filter((r) => r.n > 1).map((r) => `journal v${r.version} x${r.n}`);
    const applied = rows.filter((r) => r.status === 'applied' && r.run_id === runId).map((r) => r.version);
    truth.complete = applied.length === versions.length && applied.every((v, i) => v === versions[i]);
    const hasEffects = (await c.query<{ r: string | null }>("SELECT to_regclass('public.chaos_effects')::text AS r"))
      .rows[0]!.r;
    const effects = hasEffects
      ? (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM chaos_effects')).rows[0]!.n
      : 0;
    const slowApplied = applied.includes(SLOW_VERSION) ? 1 : 0;
    if (effects !== slowApplied) truth.doubled.push(`slow file ran ${effects} times, journal says ${slowApplied}`);
    return truth;
  }, 6);
}

/** What the checker found: broken invariants, and why each tenant that failed (legitimately) failed. */
export interface CheckResult {
  anomalies: string[];
  /** One line per tenant whose outcome is `failed` or `skipped`: its error code and message. */
  failures: string[];
}

/**
 * A read of the streams, asked again for up to 10 s while the cluster cannot answer it: right
 * after a node came back, a JetStream request can time out while the stream's leader is elected
 * (CI once lost a check that way, after a run had completed). What the read returns is judged as it is.
 */
const throughFaults = <T>(read: () => Promise<T>): Promise<T> => untilAnswered(Date.now() + 10_000, read);

/** The invariants of a finished run; each broken one is a line in `anomalies`. */
export async function checkRun(input: CheckInput): Promise<CheckResult> {
  const anomalies: string[] = [];
  const failures: string[] = [];
  const { completed, runId } = input;
  if (!completed) anomalies.push('no completed event');
  else if (input.afterLastHealMs !== undefined && input.afterLastHealMs > input.boundMs)
    anomalies.push(`completed ${input.afterLastHealMs} ms after the last fault healed (bound ${input.boundMs} ms)`);
  for (const event of ['accepted', 'planned', 'completed']) {
    const n = await throughFaults(() => subjectCount(input.jsm, STREAMS.runs.name, `sluice.runs.${runId}.${event}`));
    if (n !== 1) anomalies.push(`${n} ${event} events`);
  }

  const truths = (await Promise.all(input.fleets.map((f) => journalTruth(f, runId, input.versions)))).flat();
  const outcomes = await throughFaults(() => outcomesByTenant(input.nc, runId));
  const done = truths.filter((t) => t.complete).length;
  if (completed) {
    const c = completed.counts;
    if (c.total !== truths.length) anomalies.push(`counts.total ${c.total}, ${truths.length} tenants selected`);
    if (c.migrated + c.upToDate !== done)
      anomalies.push(`counts say ${c.migrated + c.upToDate} migrated, the journals ${done}`);
    if (c.failed + c.skipped + c.pending !== truths.length - done)
      anomalies.push(`counts say ${c.failed} failed, the journals ${truths.length - done} unfinished`);
  }
  for (const t of truths) {
    const o = outcomes.get(t.tenantId) ?? [];
    if (o.length !== 1) anomalies.push(`${t.tenantId}: ${o.length} outcomes`);
    const first = o[0];
    if (first) {
      const succeeded = first.status === 'migrated' || first.status === 'upToDate';
      if (succeeded !== t.complete)
        anomalies.push(
          `${t.tenantId}: outcome ${first.status}${first.error ? ` (${first.error.code})` : ''}, journal ${t.complete ? 'complete' : 'incomplete'}`,
        );
      if (first.error?.code === 'locked') anomalies.push(`${t.tenantId}: reported locked`);
      if (!succeeded)
        failures.push(
          `${t.tenantId}: ${first.status}${first.error ? ` ${first.error.code}: ${first.error.message.slice(0, 200)}` : ''}`,
        );
    }
    for (const d of t.doubled) anomalies.push(`${t.tenantId}: ${d}`);
    if (t.dirty.length > 0 && first?.status !== 'failed')
      anomalies.push(`${t.tenantId}: dirty v${t.dirty.join(',')} without a failure naming it`);
  }
  for (const s of input.unkilled)
    if (s.logs.some((l) => l.level === 'fatal') || !(await running(s)))
      anomalies.push(`${s.name} ${s.pid} (never killed) is not running`);
  for (const s of input.processes)
    if (s.output.some((line) => line.includes(input.password)))
      anomalies.push(`${s.name} ${s.pid} logged the database password`);
  return { anomalies, failures };
}

async function running(s: ServiceProcess): Promise<boolean> {
  const state = await Promise.race([s.exited.then(() => 'exited'), Promise.resolve('running')]);
  return state === 'running';
}
