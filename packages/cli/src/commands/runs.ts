import { connectBus } from '@sluice/bus';
import { RUN_STATUSES } from '@sluice/contracts';
import { type Env, settledCount } from '@sluice/core';

import { CliError } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatDuration, formatTable, type Output } from '../output.js';
import { listRuns, type RunView } from '../run-reader.js';
import { silentLogger } from './migrate.js';
import { recoverRun } from './run-recover.js';
import { shownStatus } from './status.js';

export const RUNS: CommandSpec = {
  name: 'runs',
  args: '[recover RUN_ID]',
  summary: 'Lists the runs the event stream holds (7 days), newest first.',
  description: `sluice runs recover RUN_ID publishes the completed event of a run whose events were lost
(the JetStream store deleted), computed from the journal rows that carry the run id in every
registry tenant (SLUICE_REGISTRY, PG* credentials) and marked recovered: tenants with rows count
migrated (failed when a row is dirty), tenants without count skipped as not reached. Nothing is
published when the run already has a completed event.`,
  flags: {
    status: { type: 'string', value: 'STATUS', help: 'only runs in this state (running, succeeded, ...)' },
    limit: { type: 'string', default: '50', value: 'N', help: 'at most N runs' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 0, max: 2 },
};

function row(v: RunView): string[] {
  const counts = v.completed?.counts ?? v.progress?.counts;
  const total = v.planned?.total ?? counts?.total;
  const done = counts ? settledCount(counts) : 0;
  const duration = v.completed
    ? formatDuration(v.completed.durationMs)
    : v.accepted
      ? formatDuration(Date.now() - Date.parse(v.accepted.acceptedAt))
      : '';
  return [
    v.runId,
    shownStatus(v),
    v.accepted
      ? v.accepted.rollbackOf
        ? `undo ${v.accepted.rollbackOf.runId}`
        : `${String(v.accepted.target)}${v.accepted.target === 'latest' ? ` (${v.accepted.targetVersion})` : ''}`
      : '?',
    `${done}/${total ?? '?'}`,
    String(counts?.failed ?? 0),
    String(counts?.skipped ?? 0),
    v.accepted?.acceptedAt.replace('T', ' ').slice(0, 19) ?? '',
    duration,
  ];
}

export async function runsCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand<{ status?: string; limit: string; json: boolean; server?: string }>(
    RUNS,
    argv,
  );
  if (positionals.length > 0) {
    if (positionals[0] !== 'recover' || positionals.length !== 2)
      throw new CliError('usage: sluice runs [--status S] [--limit N], or sluice runs recover RUN_ID');
    return recoverRun(positionals[1]!, values, env, output);
  }
  const statuses = [...RUN_STATUSES, 'lost'];
  if (values.status && !statuses.includes(values.status))
    throw new CliError(`--status takes one of ${statuses.join(', ')}`);
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)
    throw new CliError('--limit takes a whole number from 1');
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    const runs = (await listRuns(bus))
      .filter((r) => !values.status || shownStatus(r) === values.status)
      .slice(0, Number(values.limit));
    if (values.json) {
      for (const r of runs) output.out(JSON.stringify({ ...r, status: shownStatus(r) }));
    } else if (runs.length === 0) {
      output.out(values.status ? `no ${values.status} runs` : 'no runs');
    } else {
      for (const line of formatTable(
        ['RUN', 'STATUS', 'TARGET', 'DONE', 'FAILED', 'SKIPPED', 'STARTED (UTC)', 'TIME'],
        runs.map(row),
      ))
        output.out(line);
    }
    return 0;
  } finally {
    await bus.close();
  }
}
