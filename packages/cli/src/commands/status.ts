import { parseArgs } from 'node:util';

import { connectBus, decodeJson, DeliverPolicy, loadBusConfig } from '@sluice/bus';
import {
  RunAcceptedEventSchema,
  RunCompletedEventSchema,
  runEventsFilter,
  RunPlannedEventSchema,
  RunProgressEventSchema,
  STREAMS,
} from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import { formatCompleted, formatCounts, formatProgress, type Output } from '../output.js';
import { silentLogger } from './migrate.js';

export const STATUS_USAGE = `sluice status RUN_ID [--json]

Shows where a run stands, from its events (works while the run goes and long after).`;

export async function statusCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const runId = positionals[0];
  if (!runId || positionals.length > 1) throw new CliError(`usage: ${STATUS_USAGE}`);
  const bus = await connectBus(loadBusConfig(env, 'sluice-cli'), silentLogger);
  try {
    const filter = runEventsFilter(runId);
    const info = await bus.jsm.streams.info(STREAMS.runs.name, { subjects_filter: filter }).catch(() => undefined);
    const stored = Object.values(info?.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    if (stored === 0) throw new CliError(`no run ${runId}`, EXIT.failure);
    const consumer = await bus.js.consumers.get(STREAMS.runs.name, { filter_subjects: filter, deliver_policy: DeliverPolicy.All });
    const latest: Record<string, unknown> = {};
    const messages = await consumer.consume();
    for await (const msg of messages) {
      latest[msg.subject.split('.').at(-1)!] = decodeJson(msg.data);
      if (msg.info.pending === 0) break;
    }
    await messages.close();
    const completed = RunCompletedEventSchema.safeParse(latest.completed);
    const progress = RunProgressEventSchema.safeParse(latest.progress);
    const accepted = RunAcceptedEventSchema.safeParse(latest.accepted);
    const planned = RunPlannedEventSchema.safeParse(latest.planned);
    if (values.json) {
      output.out(JSON.stringify({ runId, ...latest }));
    } else if (completed.success) {
      for (const line of formatCompleted(completed.data)) output.out(line);
    } else {
      output.out(`run ${runId}: ${planned.success ? 'RUNNING' : 'PLANNING'}`);
      if (accepted.success) output.out(`  target    ${String(accepted.data.target)} (version ${accepted.data.targetVersion}), accepted ${accepted.data.acceptedAt}`);
      if (planned.success) output.out(`  planned   ${planned.data.total} tenants (${planned.data.tasks} tasks, ${planned.data.skipped} skipped, ${planned.data.invalid} invalid)`);
      if (progress.success) {
        output.out(`  progress  ${formatProgress(progress.data, false)}`);
        output.out(`  tenants   ${formatCounts(progress.data.counts)}`);
      }
    }
    if (!completed.success) return EXIT.ok;
    return completed.data.status === 'succeeded' ? EXIT.ok : EXIT.runNotSucceeded;
  } finally {
    await bus.close();
  }
}
