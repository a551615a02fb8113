import { parseArgs } from 'node:util';

import { connectBus, loadBusConfig, readCountedOutcomes } from '@sluice/bus';
import { TENANT_STATUSES } from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import { formatTable, type Output, tenantRow } from '../output.js';
import { readRun } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const TENANTS_USAGE = `sluice tenants RUN_ID [--failed | --status STATUS] [--limit N] [--json]

Lists the tenants of a run with their outcome (the first terminal one, as counted):
--failed shows the failures with their error code and message.`;

export async function tenantsCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      failed: { type: 'boolean', default: false },
      status: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  const runId = positionals[0];
  if (!runId || positionals.length > 1) throw new CliError(`usage: ${TENANTS_USAGE}`);
  if (values.failed && values.status && values.status !== 'failed')
    throw new CliError('use either --failed or --status, not both');
  const status = values.failed ? 'failed' : values.status;
  if (status && !(TENANT_STATUSES as readonly string[]).includes(status))
    throw new CliError(`--status takes one of ${TENANT_STATUSES.join(', ')}`);
  if (values.limit !== undefined && !/^\d+$/.test(values.limit)) throw new CliError('--limit takes a whole number');
  const bus = await connectBus(loadBusConfig(env, 'sluice-cli'), silentLogger);
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
