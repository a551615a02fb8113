import { type Bus, readCountedOutcomes } from '@sluice/bus';
import type { MigrateRequestInput } from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import { formatTable, type Output, tenantRow } from '../output.js';
import { requestScope, type RequestValues, sendRequest } from './migrate.js';

export const ROLLBACK: CommandSpec = {
  name: 'rollback',
  args: 'RUN_ID',
  summary: 'Undoes one run: each tenant it changed goes back to the version it found there.',
  description: `A run like any other (canary, failure thresholds, pause/cancel, report): per tenant, the
executor reads the journal rows that carry RUN_ID and runs their down files (NNNN_name.down.sql),
newest first, back to the version RUN_ID found. Tenants RUN_ID did not change are left as they are
(up to date); tenants a later run changed on top fail with changed_by_later_run and are left alone
unless --force; a version without a down file fails its tenant (irreversible), nothing undone.
--dry-run lists per tenant what would be undone (sluice tenants ID --status pending).
Exit codes as for migrate --wait.`,
  flags: {
    'run-id': {
      type: 'string',
      value: 'ID',
      help: 'the id of this rollback run (default: rollback-<RUN_ID>-<random>)',
    },
    force: { type: 'boolean', default: false, help: 'also undo versions later runs applied on top' },
    'allow-changed-down': {
      type: 'boolean',
      default: false,
      help: 'run down files changed since their up file ran (refused as drift otherwise)',
    },
    tenants: { type: 'string', value: 'ID,ID...', help: 'only these tenants (default: the tenants RUN_ID covered)' },
    tag: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'only tenants with this tag' },
    canary: { type: 'string', value: 'N', help: 'roll back N tenants first, the fleet once they succeeded' },
    'max-failures': { type: 'string', value: 'N', help: 'stop the run after more than N failures' },
    'max-failure-rate': { type: 'string', value: 'R', help: 'stop the run when failures pass this share (0.05 or 5%)' },
    'dry-run': { type: 'boolean', default: false, help: 'list per tenant what would be undone; undo nothing' },
    lint: { type: 'string', value: 'error|warn', help: 'warn: run even when the set has lint errors (default error)' },
    'requested-by': { type: 'string', value: 'NAME', help: 'who asked, recorded in the run' },
    wait: { type: 'boolean', default: false, help: 'follow the run until it completes' },
    timeout: { type: 'string', value: 'DURATION', help: 'with --wait, stop waiting after this (30s, 10m)' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 1, max: 1 },
};

interface RollbackValues extends RequestValues {
  force: boolean;
}

export async function rollbackCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values, positionals } = parseCommand<RollbackValues>(ROLLBACK, argv);
  const undone = positionals[0]!;
  const runId = values['run-id'] ?? `rollback-${undone.slice(0, 40)}-${Math.random().toString(36).slice(2, 8)}`;
  const input: MigrateRequestInput = {
    runId,
    rollback: { runId: undone, ...(values.force ? { force: true } : {}) },
    ...requestScope(values),
  };
  // A dry run with --wait ends with what it found per tenant: the versions each would undo.
  const listTenants =
    values['dry-run'] && values.wait && !values.json
      ? async (bus: Bus): Promise<void> => {
          const outcomes = (await readCountedOutcomes(bus, runId))
            .filter((o) => o.status !== 'upToDate')
            .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
          if (outcomes.length === 0) {
            output.out(`run ${runId}: nothing to undo (${undone} changed none of these tenants)`);
            return;
          }
          for (const line of formatTable(['TENANT', 'STATUS', 'CODE', 'DETAIL'], outcomes.map(tenantRow)))
            output.out(line);
        }
      : undefined;
  return sendRequest(input, values, env, output, listTenants);
}
