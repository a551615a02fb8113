import {
  appendLedger,
  type Bus,
  connectBus,
  decodeJson,
  ensureLedgerStream,
  ensureTopology,
  readSubject,
} from '@sluice/bus';
import {
  LEDGER_STREAM,
  ledgerSubject,
  outcomeSubject,
  type RunControlEvent,
  runEventSubject,
  STREAMS,
  type TaskLedgerEntry,
  taskSubject,
  type TenantOutcome,
  type TenantTask,
} from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { apiAuthEnv, apiHeaders, type NatsServerHandle, startNatsServer } from '@sluice/testkit';

import { loadReporterConfig } from '../src/config.js';
import { type ReporterService, startReporterService } from '../src/reporter-service.js';

export const logger = createLogger({ service: 'reporter-test', level: 'silent' });
export const HOST = '127.0.0.1:5432';

/** A private nats-server with Sluice's streams, and helpers that play planner and executor. */
export async function reporterHarness() {
  const nats: NatsServerHandle = await startNatsServer();
  const bus: Bus = await connectBus({ servers: nats.url, name: 'reporter-test' }, logger);
  await ensureTopology(bus.jsm);
  await ensureLedgerStream(bus.jsm);
  const reporters: ReporterService[] = [];
  const iso = () => new Date().toISOString();

  const task = (runId: string, tenantId: string, stage?: 'canary' | 'fleet'): TenantTask => ({
    runId,
    tenantId,
    databaseUrl: `postgres://postgres@${HOST}/${tenantId}`,
    host: HOST,
    target: 2,
    digest: 'a'.repeat(64),
    dryRun: false,
    plannedAt: iso(),
    ...(stage ? { stage } : {}),
  });

  return {
    nats,
    bus,
    task,
    async startReporter(env: Record<string, string> = {}): Promise<ReporterService> {
      const reporter = await startReporterService(
        loadReporterConfig({
          NATS_URL: nats.url,
          SLUICE_REPORTER_PORT: '0',
          SLUICE_PROGRESS_INTERVAL: '300ms',
          ...apiAuthEnv(),
          ...env,
        }),
        logger,
      );
      reporters.push(reporter);
      return reporter;
    },
    accept: (runId: string, extra: Record<string, unknown> = {}) =>
      bus.publish(
        runEventSubject(runId, 'accepted'),
        {
          runId,
          target: 'latest',
          targetVersion: 2,
          digest: 'a'.repeat(64),
          dryRun: false,
          acceptedAt: iso(),
          ...extra,
        },
        { msgId: `${runId}:accepted` },
      ),
    plan: (runId: string, total: number, extra: Record<string, unknown> = {}) =>
      bus.publish(
        runEventSubject(runId, 'planned'),
        { runId, total, tasks: total, skipped: 0, invalid: 0, plannedAt: iso(), ...extra },
        { msgId: `${runId}:planned` },
      ),
    control: (runId: string, action: RunControlEvent['action'], reason?: string) =>
      bus.publish(runEventSubject(runId, 'control'), { runId, action, at: iso(), ...(reason ? { reason } : {}) }),
    /** Publishes a task as the planner does, with its ledger entry; resolves with the task's sequence. */
    async planTask(runId: string, tenantId: string, stage?: 'canary' | 'fleet'): Promise<number> {
      const t = task(runId, tenantId, stage);
      const ack = await bus.publish(taskSubject(HOST), t, { msgId: `${runId}:${tenantId}` });
      await appendLedger(bus, runId, { kind: 'planned', task: t, taskSeq: ack.seq });
      return ack.seq;
    },
    /** Parks a task as an executor's run gate does. */
    park: (runId: string, tenantId: string, taskSeq: number, reason: 'paused' | 'canary' = 'paused') =>
      appendLedger(bus, runId, { kind: 'parked', task: task(runId, tenantId), taskSeq, reason, at: iso() }),
    settle: (runId: string, tenantId: string, status: TenantOutcome['status'] = 'migrated', code?: string) =>
      bus.publish(
        outcomeSubject(runId),
        {
          runId,
          tenantId,
          status,
          applied: [],
          attempts: 1,
          finishedAt: iso(),
          ...(code ? { error: { code, message: code, transient: false } } : {}),
        },
        { msgId: `${runId}:${tenantId}` },
      ),
    async ledger(runId: string): Promise<Array<TaskLedgerEntry & { seq: number }>> {
      const out: Array<TaskLedgerEntry & { seq: number }> = [];
      await readSubject(
        bus,
        LEDGER_STREAM.name,
        ledgerSubject(runId),
        (m) => void out.push({ ...(decodeJson(m.data) as TaskLedgerEntry), seq: m.seq }),
      );
      return out;
    },
    async outcomes(runId: string): Promise<TenantOutcome[]> {
      const out: TenantOutcome[] = [];
      await readSubject(
        bus,
        STREAMS.outcomes.name,
        outcomeSubject(runId),
        (m) => void out.push(decodeJson(m.data) as TenantOutcome),
      );
      return out;
    },
    async events(runId: string, event: string): Promise<Array<{ data: unknown; time: number; seq: number }>> {
      const out: Array<{ data: unknown; time: number; seq: number }> = [];
      await readSubject(
        bus,
        STREAMS.runs.name,
        runEventSubject(runId, event as 'progress'),
        (m) => void out.push({ data: decodeJson(m.data), time: Math.floor(m.info.timestampNanos / 1e6), seq: m.seq }),
      );
      return out;
    },
    async http(
      reporter: ReporterService,
      method: string,
      path: string,
      body?: unknown,
    ): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
      const res = await fetch(`http://127.0.0.1:${reporter.httpPort}${path}`, {
        method,
        headers: apiHeaders(),
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
    },
    async dispose(): Promise<void> {
      for (const r of reporters) await r.stop().catch(() => undefined);
      await bus.close();
      await nats.dispose();
    },
  };
}

export type ReporterHarness = Awaited<ReturnType<typeof reporterHarness>>;
