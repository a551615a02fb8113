import type { RunCompletedEvent, RunCounts, RunProgressEvent } from '@sluice/contracts';

/** Where the CLI writes; injectable so tests capture it. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** True when stdout is a terminal (progress redraws one line in place). */
  isTTY: boolean;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTTY: Boolean(process.stdout.isTTY),
};

export function formatDuration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

export function formatCounts(c: RunCounts): string {
  const parts = [`${c.migrated} migrated`, `${c.upToDate} up to date`];
  if (c.pending > 0) parts.push(`${c.pending} pending`);
  parts.push(`${c.failed} failed`, `${c.skipped} skipped`);
  return `${parts.join(', ')} (of ${c.total})`;
}

/** One progress line: a bar on a terminal, plain text elsewhere. */
export function formatProgress(p: RunProgressEvent, tty: boolean): string {
  const total = p.counts.total;
  const pct = total > 0 ? p.done / total : 0;
  const eta = p.etaMs === null ? '?' : formatDuration(p.etaMs);
  const text = `${p.done}/${total || '?'} tenants  ${p.ratePerSec.toFixed(1)}/s  eta ${eta}  failed ${p.counts.failed}`;
  if (!tty) return `progress ${p.runId}: ${text}`;
  const width = 30;
  const filled = Math.round(pct * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(pct * 100).toFixed(0).padStart(3)}%  ${text}`;
}

/** The human report of a completed run. */
export function formatCompleted(c: RunCompletedEvent): string[] {
  const lines = [
    `run ${c.runId}: ${c.status.toUpperCase()}${c.dryRun ? ' (dry run)' : ''}`,
    `  target    ${String(c.target)}${c.targetVersion !== null ? ` (version ${c.targetVersion})` : ''}`,
    `  tenants   ${formatCounts(c.counts)}`,
    `  duration  ${formatDuration(c.durationMs)} (${c.startedAt} -> ${c.finishedAt})`,
  ];
  if (c.error) lines.push(`  error     ${c.error}`);
  if (c.failures.length > 0) {
    lines.push(`  failures${c.failuresTruncated ? ` (first ${c.failures.length})` : ''}:`);
    for (const f of c.failures) lines.push(`    ${f.tenantId}: ${f.code ? `[${f.code}] ` : ''}${f.error}`);
  }
  return lines;
}
