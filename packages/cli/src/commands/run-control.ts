import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

import { connectBus, loadBusConfig } from '@sluice/bus';
import { controlRefusal, type RunControlEvent, runEventSubject, type UserControlAction } from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import type { Output } from '../output.js';
import { readRun } from '../run-reader.js';
import { silentLogger } from './migrate.js';

export const CONTROL_USAGE: Record<UserControlAction, string> = {
  pause: `sluice pause RUN_ID [--reason TEXT] [--requested-by NAME] [--json]

Pauses a run: tenants being migrated finish, no new tenant starts until 'sluice resume'.`,
  resume: `sluice resume RUN_ID [--reason TEXT] [--requested-by NAME] [--json]

Resumes a paused run.`,
  cancel: `sluice cancel RUN_ID [--reason TEXT] [--requested-by NAME] [--json]

Cancels a run: tenants being migrated finish, the others are skipped; the run ends cancelled.`,
};

/** `sluice pause|resume|cancel RUN_ID`: checks the run's state, then publishes the control event. */
export function controlCommand(action: UserControlAction) {
  return async function (argv: string[], env: Env, output: Output): Promise<number> {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        reason: { type: 'string' },
        'requested-by': { type: 'string' },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
      strict: true,
    });
    const runId = positionals[0];
    if (!runId || positionals.length > 1) throw new CliError(`usage: ${CONTROL_USAGE[action]}`);
    if ((values.reason?.length ?? 0) > 500) throw new CliError('--reason takes at most 500 characters');
    const bus = await connectBus(loadBusConfig(env, 'sluice-cli'), silentLogger);
    try {
      const view = await readRun(bus, runId);
      if (!view) throw new CliError(`no run ${runId}`, EXIT.failure);
      const refusal = controlRefusal(view.control, action);
      if (refusal) throw new CliError(refusal, EXIT.failure);
      const event: RunControlEvent = {
        runId,
        action,
        ...(values.reason ? { reason: values.reason } : {}),
        requestedBy: values['requested-by'] ?? env.USER ?? 'sluice-cli',
        at: new Date().toISOString(),
      };
      await bus.publish(runEventSubject(runId, 'control'), event, { msgId: `${runId}:control:${randomUUID()}` });
      output.out(
        values.json
          ? JSON.stringify({ ...event, published: true })
          : `${action} requested for run ${runId} (was ${view.status}); see 'sluice status ${runId}'`,
      );
      return EXIT.ok;
    } finally {
      await bus.close();
    }
  };
}
