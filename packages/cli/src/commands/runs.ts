import { connectBus } from '@sluice/bus';
import { RUN_STATUSES } from '@sluice/contracts';
import { type Env, settledCount } from '@sluice/core';

import { CliError } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatDuration, formatTable, type Output } from '../output.js';
import { listRuns, type RunView } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const RUNS: CommandSpec = {
  name: 'runs',
  args: '',
  summary: 'Lists the runs the event stream holds (7 days), newest first.',
  description: '',
  flags: {
    status: { type: 'string', value: 'STATUS', help: 'only runs in this state (running, succeeded, ...)' },
    limit: { type: 'string', default: '50', value: 'N', help: 'at most N runs' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 0, max: 0 },
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
    v.status,
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
  const { values } = parseCommand<{ status?: string; limit: string; json: boolean; server?: string }>(RUNS, argv);
  if (values.status && !(RUN_STATUSES as readonly string[]).includes(values.status))
    throw new CliError(`--status takes one of ${RUN_STATUSES.join(', ')}`);
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)
    throw new CliError('--limit takes a whole number from 1');
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    const runs = (await listRuns(bus))
      .filter((r) => !values.status || r.status === values.status)
      .slice(0, Number(values.limit));
    if (values.json) {
      for (const r of runs) output.out(JSON.stringify(r));
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
