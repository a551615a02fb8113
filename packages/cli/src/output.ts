import {
  type Bottleneck,
  FINAL_RUN_STATUSES,
  recoverCommand,
  type RunCompletedEvent,
  type RunControlEvent,
  type RunCounts,
  type RunLostEvent,
  type RunProgressEvent,
  type RunTimings,
  type TenantOutcome,
} from '@sluice/contracts';

/** Where the CLI writes; injectable so tests capture it. */
export interface Output {
  out(line: string): void;
  err(line: string): void;
  /** True when stdout is a terminal (progress redraws one line in place). */
  isTTY: boolean;
  /** Terminal only: replaces the current line (no newline), for a live progress bar. */
  redraw?(line: string): void;
}

export const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  isTTY: Boolean(process.stdout.isTTY),
  redraw: (line) =>
    process.stdout.write(`\r\x1b[2K${line.slice(0, Math.max(20, (process.stdout.columns || 120) - 1))}`),
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
  if (c.rolledBack !== undefined) parts.unshift(`${c.rolledBack} rolled back`);
  if (c.pending > 0) parts.push(`${c.pending} pending`);
  parts.push(`${c.failed} failed`, `${c.skipped} skipped`);
  return `${parts.join(', ')} (of ${c.total})`;
}

/** One progress line: a bar on a terminal, plain text elsewhere. */
export function formatProgress(p: RunProgressEvent, tty: boolean): string {
  const total = p.counts.total;
  const pct = total > 0 ? p.done / total : 0;
  const ended = (FINAL_RUN_STATUSES as readonly string[]).includes(p.status);
  const eta = ended ? '' : `  eta ${p.etaMs === null ? '?' : formatDuration(p.etaMs)}`;
  const state = p.status === 'running' ? (p.stage === 'canary' ? '  [canaries]' : '') : `  [${p.status}]`;
  const skipped = p.counts.skipped > 0 ? `  skipped ${p.counts.skipped}` : '';
  const text = `${p.done}/${total || '?'} tenants  ${p.ratePerSec.toFixed(1)}/s${eta}  failed ${p.counts.failed}${skipped}${state}`;
  if (!tty) return `progress ${p.runId}: ${text}`;
  const width = 30;
  const filled = Math.round(pct * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(pct * 100).toFixed(0).padStart(3)}%  ${text}`;
}

/** What is left of a lost run, and what to do: the last lines of every report of a lost run. */
function lostRunAdvice(recover: string): string[] {
  return [
    '  why       its tasks, outcomes and events went with the store; the tenant journals hold what was applied',
    `  recover   ${recover}   (counts every tenant from its journal and publishes the run's completed event)`,
  ];
}

/** A run lost with the JetStream store (and not recovered yet), as its `lost` event tells it. */
export function formatLostRun(lost: RunLostEvent): string[] {
  const k = lost.lastKnown;
  return [
    `run ${lost.runId}: LOST (the JetStream store was lost while it was ${k.status})`,
    `  lost      detected ${lost.detectedAt}; ${k.settled} of ${k.total ?? '?'} tenants had settled${k.targetVersion !== undefined ? `, target version ${k.targetVersion}` : ''}`,
    ...lostRunAdvice(lost.recover),
  ];
}

/** A run whose events went with the JetStream store, and that no reporter reported lost (none was following it). */
export function formatVanishedRun(runId: string): string[] {
  return [
    `run ${runId}: LOST (the JetStream store was lost while it was in flight; no reporter reported it)`,
    ...lostRunAdvice(recoverCommand(runId)),
  ];
}

/** The human report of a completed run. */
export function formatCompleted(c: RunCompletedEvent): string[] {
  const lines = [
    `run ${c.runId}: ${c.status.toUpperCase()}${c.dryRun ? ' (dry run)' : ''}`,
    c.rollbackOf
      ? `  rollback  of run ${c.rollbackOf.runId}${c.rollbackOf.force ? ' (forced)' : ''}: each tenant back to the version that run found`
      : `  target    ${String(c.target)}${c.targetVersion !== null ? ` (version ${c.targetVersion})` : ''}`,
    `  tenants   ${formatCounts(c.counts)}`,
    `  duration  ${formatDuration(c.durationMs)} (${c.startedAt} -> ${c.finishedAt})`,
  ];
  if (c.fromFleetState !== undefined)
    lines.push(`  trusted   ${c.fromFleetState} up to date from the fleet state (journals not read)`);
  if (c.recovered)
    lines.push(
      `  recovered from the journals after the run's events were lost: ${c.recovered.notReached} not reached, ${c.recovered.unreadable} unreadable (both counted skipped)`,
    );
  if (c.stoppedBy) {
    const by = c.stoppedBy.requestedBy ? ` by ${c.stoppedBy.requestedBy}` : '';
    lines.push(
      `  ${c.stoppedBy.action === 'cancel' ? 'cancelled' : 'stopped  '} ${c.stoppedBy.at}${by}${c.stoppedBy.reason ? `: ${c.stoppedBy.reason}` : ''}`,
    );
  }
  if (c.error) lines.push(`  error     ${c.error}`);
  if (c.failures.length > 0) {
    lines.push(`  failures${c.failuresTruncated ? ` (first ${c.failures.length})` : ''}:`);
    for (const f of c.failures) lines.push(`    ${f.tenantId}: ${f.code ? `[${f.code}] ` : ''}${f.error}`);
  }
  if (c.traceId) lines.push(`  trace     ${c.traceId} (open it in Jaeger: search by trace id)`);
  lines.push(...formatTimeReport(c.timings, c.bottleneck));
  return lines;
}

/**
 * "Where the time went" and the bottleneck: per-tenant averages of each part, the executors'
 * busy share, the slowest hosts, and the verdict with its lever.
 */
export function formatTimeReport(
  timings: RunTimings | undefined | null,
  bottleneck: Bottleneck | undefined | null,
): string[] {
  if (!timings || timings.totals.tenants === 0) return [];
  const t = timings.totals;
  const avg = (v: number): string => formatDuration(v / t.tenants);
  const lines = [
    `  time      per tenant: queued ${avg(t.queuedMs)}, connect ${avg(t.connectMs)}, journal ${avg(t.journalMs)}, SQL ${avg(t.executeMs)} (database ${avg(t.serverMs)}),`,
    `            lock waits ${avg(t.lockWaitMs)}, host unavailable ${avg(t.unavailableMs)}, other retries ${avg(t.retryDelayMs)}`,
    `            executors ${timings.executors} (${timings.executorSlots} slots, busy ${Math.round(timings.executorBusyShare * 100)}%)${timings.planningMs !== null ? `, planning ${formatDuration(timings.planningMs)}` : ''}`,
  ];
  for (const h of timings.hosts.slice(0, 3)) {
    const limit = h.atLimitShare === null ? '' : `, at its limit ${Math.round(h.atLimitShare * 100)}% of the time`;
    const inFlight =
      h.effectiveConcurrency === undefined
        ? ''
        : `, ${h.effectiveConcurrency.toFixed(1)} in flight on average${h.limit ? ` (limit ${h.limit})` : ''}`;
    lines.push(
      `  host      ${h.host}: ${h.tenants} tenants, queued ${formatDuration(h.queuedMs / Math.max(1, h.tenants))}, SQL ${formatDuration(h.executeMs / Math.max(1, h.tenants))} per tenant${inFlight}${limit}`,
    );
    const s = h.signals;
    if (s && s.baselineRttMs !== null) {
      const activity = s.activity
        ? `; sessions active ${s.activity.active.toFixed(1)} (on CPU ${s.activity.onCpu.toFixed(1)}, Lock ${s.activity.lock.toFixed(1)}, LWLock ${s.activity.lwlock.toFixed(1)}, IO ${s.activity.io.toFixed(1)})${s.activity.replayLagMs !== null ? `, replay lag ${formatDuration(s.activity.replayLagMs)}` : ''}`
        : s.activityUnavailable > 0
          ? '; pg_stat_activity not readable'
          : '';
      lines.push(
        `            round trip ${formatDuration(s.baselineRttMs)} unloaded, connect ${formatDuration(s.baselineConnectMs ?? 0)}; latency ${(s.latencyInflation ?? 1).toFixed(1)}× that${activity}`,
      );
    }
  }
  for (const e of timings.executorLoad?.slice(0, 3) ?? []) {
    lines.push(
      `  executor  ${e.executorId}: CPU ${Math.round(e.cpu * 100)}% of a core, event loop ${e.loopBusy !== undefined ? `busy ${Math.round(e.loopBusy * 100)}% of the time, ` : ''}${formatDuration(e.loopDelayMs)} late on average`,
    );
  }
  if (bottleneck) {
    lines.push(
      `  bottleneck ${bottleneck.label} (${bottleneck.mode})${bottleneck.host ? ` on ${bottleneck.host}` : ''}`,
    );
    lines.push(`            ${bottleneck.summary}`);
    lines.push(`            lever: ${bottleneck.lever}`);
    for (const w of bottleneck.whatIf ?? []) {
      const curve = w.points
        .slice(0, 8)
        .map((p) => `${p.concurrency.toFixed(1)}→${p.throughput.toFixed(1)}/s`)
        .join(', ');
      lines.push(
        `  what-if   ${w.host}: peaks at limit ${w.peakLimit}${w.stillRising ? '+ (still rising)' : ''} (${w.model === 'usl' ? `USL σ=${w.sigma} κ=${w.kappa}` : 'best level seen'}); run ${formatDuration(w.wallMs)} -> predicted ${formatDuration(w.predictedWallMs)} at that limit`,
      );
      lines.push(`            in flight → tenants/s: ${curve}`);
    }
    for (const note of bottleneck.notes ?? []) lines.push(`  note      ${note}`);
  }
  return lines;
}

/** One line for a control event (`pause`, `resume`, `cancel`, and the rollout's `promote` and `stop`). */
export function formatControl(c: RunControlEvent): string {
  const what = {
    pause: 'paused',
    resume: 'resumed',
    cancel: 'cancel requested',
    promote: 'canaries succeeded; fleet promoted',
    stop: 'stopped by its rollout',
  }[c.action];
  return `run ${c.runId} ${what}${c.requestedBy && c.action !== 'promote' ? ` by ${c.requestedBy}` : ''}${c.reason ? `: ${c.reason}` : ''}`;
}

/** Left-aligned columns, for lists of runs and tenants. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

/** A tenant's outcome in one table row: tenant, status, code, what happened. */
export function tenantRow(o: TenantOutcome): string[] {
  const what = o.error
    ? `${o.error.version !== undefined ? `version ${o.error.version}: ` : ''}${o.error.message}`
    : o.rolledBack && o.rolledBack.length > 0
      ? // A dry run's `pending` tenant lists what would be undone.
        `${o.status === 'pending' ? 'would undo' : 'undid'} ${o.rolledBack.join(', ')} (${o.fromVersion ?? 'none'} -> ${o.toVersion ?? 'none'})`
      : o.applied.length > 0
        ? `applied ${o.applied.join(', ')}`
        : '';
  return [o.tenantId, o.status, o.error?.code ?? '', what.replace(/\s+/g, ' ').slice(0, 200)];
}
