import { connectBus, readCountedOutcomes } from '@sluice/bus';
import { TENANT_STATUSES } from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatTable, type Output, tenantRow } from '../output.js';
import { readRun } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const TENANTS: CommandSpec = {
  name: 'tenants',
  args: 'RUN_ID',
  summary: 'Lists the tenants of a run with their outcome (the first terminal one, as counted).',
  description: '--failed shows the failures with their error code and message.',
  flags: {
    failed: { type: 'boolean', default: false, help: 'only failed tenants (same as --status failed)' },
    status: { type: 'string', value: 'STATUS', help: 'only tenants with this outcome (migrated, failed, ...)' },
    limit: { type: 'string', value: 'N', help: 'at most N tenants' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 1, max: 1 },
};

export async function tenantsCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand<{
    failed: boolean;
    status?: string;
    limit?: string;
    json: boolean;
    server?: string;
  }>(TENANTS, argv);
  const runId = positionals[0]!;
  if (values.failed && values.status && values.status !== 'failed')
    throw new CliError('use either --failed or --status, not both');
  const status = values.failed ? 'failed' : values.status;
  if (status && !(TENANT_STATUSES as readonly string[]).includes(status))
    throw new CliError(`--status takes one of ${TENANT_STATUSES.join(', ')}`);
  if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new CliError('--limit takes a whole number');
  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    if (!(await readRun(bus, runId))) throw new CliError(`no run ${runId}`, EXIT.failure);
    const all = await readCountedOutcomes(bus, runId);
    // Sorted by tenant, so the listing is the same whichever order the outcomes arrived in.
    const matching = all
      .filter((o) => !status || o.status === status)
      .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
    const shown = values.limit === undefined ? matching : matching.slice(0, Number(values.limit));
    if (values.json) {
      for (const o of shown) output.out(JSON.stringify(o));
    } else if (shown.length === 0) {
      output.out(
        `run ${runId}: no ${status ? `${status} ` : ''}tenants${all.length === 0 ? ' with an outcome yet' : ''}`,
      );
    } else {
      for (const line of formatTable(['TENANT', 'STATUS', 'CODE', 'DETAIL'], shown.map(tenantRow))) output.out(line);
      if (shown.length < matching.length) output.out(`(${matching.length - shown.length} more; raise --limit)`);
    }
    return EXIT.ok;
  } finally {
    await bus.close();
  }
}
