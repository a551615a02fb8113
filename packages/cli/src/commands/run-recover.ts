import { connectBus, publishOnce } from '@sluice/bus';
import { isRunId, runEventMsgId, runEventSubject, STREAMS } from '@sluice/contracts';
import { type Env, envReader, type JournalRowsOfRun, parseTenantRow, recoveredCompletion } from '@sluice/core';
import { connectTenant } from '@sluice/migrator';
import { createRegistry, loadRegistryConfig } from '@sluice/registry';

import { CliError, EXIT } from '../cli-error.js';
import { busConfigOf } from '../command-spec.js';
import { formatCompleted, type Output } from '../output.js';
import { silentLogger } from './migrate.js';

/** Journals read at once. */
const READ_CONCURRENCY = 16;

/** The rows of one tenant's journal that carry `runId`; none when the journal does not exist. */
async function rowsOfRun(
  tenant: { tenantId: string; databaseUrl: string; host: string },
  runId: string,
  connectTimeoutMs: number,
): Promise<JournalRowsOfRun> {
  let client;
  try {
    client = await connectTenant({
      databaseUrl: tenant.databaseUrl,
      host: tenant.host,
      connectTimeoutMs,
      lockTimeoutMs: 5_000,
      statementTimeoutMs: 60_000,
      applicationName: 'sluice-cli-recover',
    });
    const { rows } = await client.query<{ version: string; status: string; applied_at: Date }>(
      'SELECT version, status, applied_at FROM public.sluice_migrations WHERE run_id = $1 ORDER BY version',
      [runId],
    );
    return {
      tenantId: tenant.tenantId,
      rows: rows.map((r) => ({
        version: Number(r.version),
        status: r.status === 'dirty' ? 'dirty' : 'applied',
        appliedAt: r.applied_at.toISOString(),
      })),
    };
  } catch (error) {
    // No journal at all: the run never reached this tenant.
    if ((error as { code?: string }).code === '42P01') return { tenantId: tenant.tenantId, rows: [] };
    return { tenantId: tenant.tenantId, rows: [], unreadable: (error as Error).message.slice(0, 200) };
  } finally {
    await client?.end().catch(() => undefined);
  }
}

/**
 * `sluice runs recover RUN_ID`: for a run whose events were lost with the JetStream store, reads
 * every registry tenant's journal rows carrying the runId and publishes the `completed` event they
 * add up to, marked `recovered` — only if the run has no `completed` yet (the same once-per-run
 * rule as the reporter's).
 */
export async function recoverRun(runId: string, values: { json: boolean; server?: string }, env: Env, output: Output) {
  if (!isRunId(runId)) throw new CliError(`"${runId}" is not a run id`);
  const connectTimeoutMs = envReader(env).duration('SLUICE_CONNECT_TIMEOUT', 10_000);
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    // A run that still has its completion needs nothing: checked before thousands of journals are read.
    const subject = runEventSubject(runId, 'completed');
    if (await bus.jsm.streams.getMessage(STREAMS.runs.name, { last_by_subj: subject }).catch(() => null)) {
      output.err(`run ${runId} already has a completed event (sluice status ${runId}); nothing to recover`);
      return EXIT.failure;
    }
    const journals = await readJournals(runId, env, connectTimeoutMs);
    const completed = recoveredCompletion(runId, journals);
    const { published } = await publishOnce(bus, subject, completed, { msgId: runEventMsgId(runId, 'completed') });
    if (values.json) output.out(JSON.stringify({ published, completed }));
    else {
      output.out(
        published
          ? `published a recovered completion for ${runId}`
          : `run ${runId} already has a completed event; nothing published`,
      );
      for (const line of formatCompleted(completed)) output.out(line);
    }
    return published ? EXIT.ok : EXIT.failure;
  } finally {
    await bus.close();
  }
}

/** Every registry tenant's journal rows of the run, `READ_CONCURRENCY` journals at a time. */
async function readJournals(runId: string, env: Env, connectTimeoutMs: number): Promise<JournalRowsOfRun[]> {
  const registry = await createRegistry(loadRegistryConfig(env));
  const journals: JournalRowsOfRun[] = [];
  const inFlight = new Set<Promise<void>>();
  try {
    for await (const row of registry.list()) {
      let tenant;
      try {
        tenant = parseTenantRow(row);
      } catch {
        continue; // not a tenant: no journal to read
      }
      const read = rowsOfRun(tenant, runId, connectTimeoutMs).then((j) => void journals.push(j));
      inFlight.add(read);
      void read.finally(() => inFlight.delete(read));
      if (inFlight.size >= READ_CONCURRENCY) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await registry.close();
  }
  return journals;
}
