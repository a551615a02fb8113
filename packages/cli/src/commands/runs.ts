import { parseArgs } from 'node:util';

import { connectBus, loadBusConfig } from '@sluice/bus';
import { RUN_STATUSES } from '@sluice/contracts';
import { type Env, settledCount } from '@sluice/core';

import { CliError } from '../cli-error.js';
import { formatDuration, formatTable, type Output } from '../output.js';
import { listRuns, type RunView } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const RUNS_USAGE = `sluice runs [--status STATUS] [--limit N] [--json]

Lists the runs the event stream holds (7 days), newest first.`;

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
      ? `${String(v.accepted.target)}${v.accepted.target === 'latest' ? ` (${v.accepted.targetVersion})` : ''}`
      : '?',
    `${done}/${total ?? '?'}`,
    String(counts?.failed ?? 0),
    String(counts?.skipped ?? 0),
    v.accepted?.acceptedAt.replace('T', ' ').slice(0, 19) ?? '',
    duration,
  ];
}

export async function runsCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      status: { type: 'string' },
      limit: { type: 'string', default: '50' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new CliError(`usage: ${RUNS_USAGE}`);
  if (values.status && !(RUN_STATUSES as readonly string[]).includes(values.status))
    throw new CliError(`--status takes one of ${RUN_STATUSES.join(', ')}`);
  if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1)
    throw new CliError('--limit takes a whole number from 1');
  const bus = await connectBus(loadBusConfig(env, 'sluice-cli'), silentLogger);
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
