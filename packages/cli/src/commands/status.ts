import { connectBus } from '@sluice/bus';
import { type LintReport, recoverCommand } from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatCompleted, formatControl, formatCounts, formatLostRun, formatProgress, type Output } from '../output.js';
import { readRun, type RunView } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const STATUS: CommandSpec = {
  name: 'status',
  args: 'RUN_ID',
  summary: 'Shows where a run stands, or how it ended.',
  description: `Planning, running, paused, cancelling, or how it ended, from its events (works while the
run goes and long after). Exits 1 when the run ended without succeeding.`,
  flags: { ...JSON_FLAG, ...SERVER_FLAG },
  positionals: { min: 1, max: 1 },
};

/** The lint report of a run's migration set, as the planner found it (ignored findings included). */
export function formatLint(report: LintReport | undefined): string[] {
  if (!report) return [];
  const lines = [
    `  lint      ${report.errors} errors, ${report.warnings} warnings, ${report.ignored} ignored (lint: ${report.mode})`,
  ];
  for (const f of report.findings) {
    const level = f.ignored !== undefined ? 'ignored' : f.severity;
    lines.push(
      `    ${f.file}:${f.line}:${f.column} ${level} ${f.rule}: ${f.message}${f.ignored ? ` (${f.ignored})` : ''}`,
    );
  }
  if (report.truncated) lines.push('    … (more in sluice lint)');
  return lines;
}

/**
 * Lost and not recovered: no `completed`, and no request of the same runId accepted since (a
 * lost runId may be requested again, and that run is then reported as any other).
 */
export function isLostRun(view: RunView): boolean {
  if (!view.lost || view.completed) return false;
  return !(view.accepted && view.accepted.acceptedAt > view.lost.detectedAt);
}

/** A run's status as the CLI and the reporter's `GET /runs/:id` show it: `lost` for a lost run. */
export function shownStatus(view: RunView): RunView['status'] | 'lost' {
  return isLostRun(view) ? 'lost' : view.status;
}

/** What `sluice status` says of a run SLUICE_RUNS does not hold. */
export function unknownRunMessage(runId: string): string {
  return `no run ${runId} (runs are kept for SLUICE_RETENTION, 7 days by default); if the JetStream store was lost while it ran, ${recoverCommand(runId)} rebuilds its completed event from the tenant journals`;
}

/** The lines `sluice status` prints for a run that has not completed. */
export function formatRunView(view: RunView): string[] {
  const lines = [
    `run ${view.runId}: ${view.status.toUpperCase()}${view.accepted?.rollout?.canary ? ` (${view.control.stage === 'canary' ? 'canaries first' : 'fleet promoted'})` : ''}`,
  ];
  const a = view.accepted;
  if (a)
    lines.push(
      `  ${a.rollbackOf ? `rollback  of run ${a.rollbackOf.runId}${a.rollbackOf.force ? ' (forced)' : ''}` : `target    ${String(a.target)} (version ${a.targetVersion})`}, accepted ${a.acceptedAt}${a.requestedBy ? ` for ${a.requestedBy}` : ''}`,
    );
  if (a?.rollout)
    lines.push(
      `  rollout   ${Object.entries(a.rollout)
        .map(([k, v]) => `${k} ${String(v)}`)
        .join(', ')}`,
    );
  const p = view.planned;
  if (p) lines.push(`  planned   ${p.total} tenants (${p.tasks} tasks, ${p.skipped} skipped, ${p.invalid} invalid)`);
  if (view.progress) {
    lines.push(`  progress  ${formatProgress(view.progress, false).replace(/^progress [^:]+: /, '')}`);
    lines.push(`  tenants   ${formatCounts(view.progress.counts)}`);
  }
  const last = view.controls.at(-1);
  if (last) lines.push(`  control   ${formatControl(last).replace(/^run \S+ /, '')} (${last.at})`);
  return lines;
}

export async function statusCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand(STATUS, argv);
  const runId = positionals[0]!;
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    const view = await readRun(bus, runId);
    if (!view) throw new CliError(unknownRunMessage(runId), EXIT.failure);
    if (values.json) output.out(JSON.stringify({ ...view, status: shownStatus(view) }));
    else {
      const lines = view.completed
        ? formatCompleted(view.completed)
        : isLostRun(view)
          ? formatLostRun(view.lost!)
          : formatRunView(view);
      for (const line of [...lines, ...formatLint(view.accepted?.lint)]) output.out(line);
    }
    // A lost run did not succeed as far as anyone can tell until it is recovered.
    if (!view.completed) return isLostRun(view) ? EXIT.runNotSucceeded : EXIT.ok;
    return view.completed.status === 'succeeded' ? EXIT.ok : EXIT.runNotSucceeded;
  } finally {
    await bus.close();
  }
}
