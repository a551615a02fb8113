import { type Bus, ensureTopology, type FleetStore, openFleetStore } from '@sluice/bus';
import {
  type AuditKind,
  type FleetRecord,
  type FleetSummary,
  type MigrateRequestInput,
  REQUEST_SUBJECT,
  requestMsgId,
} from '@sluice/contracts';
import { isVerifyDifference } from '@sluice/core';

import { EXIT } from '../cli-error.js';
import { formatTable, type Output } from '../output.js';
import { watchRun } from '../run-watcher.js';

/** What an audit run is asked: which tenants, under which runId, how long to wait. */
export interface AuditOptions {
  runId?: string;
  tags?: Record<string, string>;
  timeoutMs?: number;
  json: boolean;
}

/** Counts every record into a fresh summary and rebuilds the attention index (after a rebuild, or with `--recount`). */
export function recountFleet(store: FleetStore): Promise<FleetSummary> {
  return store.recount();
}

/**
 * `sluice fleet verify` and `sluice fleet rebuild`: a dry run of every tenant (or those with the
 * tags), through the planner and the executors at each host's limit, whose outcomes the reporter
 * writes into the fleet state before it completes the run. Verify then lists the tenants whose
 * record said otherwise than their journal (corrected now, the old values in `was`); rebuild
 * counts the records again into a fresh summary.
 */
export async function auditFleet(bus: Bus, kind: AuditKind, options: AuditOptions, output: Output): Promise<number> {
  const runId =
    options.runId ??
    `${kind}-${new Date()
      .toISOString()
      .replace(/[-:.TZ]/g, '')
      .slice(0, 14)}`;
  await ensureTopology(bus.jsm);
  const store = await openFleetStore(bus);
  const watching = await watchRun(bus, runId, {
    output,
    json: options.json,
    ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}),
  });
  const request: MigrateRequestInput = {
    runId,
    target: 'latest',
    dryRun: true,
    audit: kind,
    requestedBy: `sluice fleet ${kind}`,
    ...(options.tags ? { tenants: { tags: options.tags } } : {}),
  };
  await bus.publish(REQUEST_SUBJECT, request, { msgId: requestMsgId(runId) });
  if (!options.json) output.err(`published ${kind} run ${runId}; waiting for every journal to be read`);
  const code = await watching.result;
  if (code !== EXIT.ok && code !== EXIT.runNotSucceeded) return code;
  if (kind === 'rebuild') {
    const summary = await recountFleet(store);
    if (options.json) output.out(JSON.stringify({ runId, rebuilt: summary.total, summary }));
    else output.out(`fleet state rebuilt from the journals: ${summary.total} tenants (sluice fleet shows them)`);
    return EXIT.ok;
  }
  const differences: FleetRecord[] = [];
  await store.scan(1, (record) => {
    if (isVerifyDifference(record, runId)) differences.push(record);
  });
  if (options.json) {
    output.out(JSON.stringify({ runId, differences: differences.length, tenants: differences }));
  } else if (differences.length === 0) {
    output.out(`verify ${runId}: every journal read agrees with the fleet state`);
  } else {
    output.out(`verify ${runId}: ${differences.length} tenants differed from their record (corrected):`);
    for (const line of formatTable(
      ['TENANT', 'RECORD SAID', 'JOURNAL SAYS', 'HOST'],
      differences.map((r) => [
        r.tenantId,
        `${r.was!.status} at ${r.was!.version ?? '-'}`,
        `${r.status} at ${r.version ?? '-'}${r.error ? ` [${r.error.code}]` : ''}`,
        r.host ?? '',
      ]),
    ))
      output.out(`  ${line}`);
  }
  return differences.length === 0 ? EXIT.ok : EXIT.runNotSucceeded;
}
