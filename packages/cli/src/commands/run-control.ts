import { randomUUID } from 'node:crypto';

import { connectBus } from '@sluice/bus';
import {
  controlRefusal,
  type RunControlEvent,
  runEventSubject,
  USER_CONTROL_ACTIONS,
  type UserControlAction,
} from '@sluice/contracts';
import type { Env } from '@sluice/core';

import { CliError, EXIT } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import type { Output } from '../output.js';
import { readRun } from '../run-reader.js';
import { silentLogger } from './migrate.js';

const CONTROL_SUMMARY: Record<UserControlAction, [string, string]> = {
  pause: ['Pauses a run.', "Tenants being migrated finish, no new tenant starts until 'sluice resume'."],
  resume: ['Resumes a paused run.', ''],
  cancel: ['Cancels a run.', 'Tenants being migrated finish, the others are skipped; the run ends cancelled.'],
};

export const CONTROLS = Object.fromEntries(
  USER_CONTROL_ACTIONS.map((action): [UserControlAction, CommandSpec] => [
    action,
    {
      name: action,
      args: 'RUN_ID',
      summary: CONTROL_SUMMARY[action][0],
      description: CONTROL_SUMMARY[action][1],
      flags: {
        reason: { type: 'string', value: 'TEXT', help: 'why, recorded with the control (at most 500 characters)' },
        'requested-by': { type: 'string', value: 'NAME', help: 'who asks (default: $USER)' },
        ...JSON_FLAG,
        ...SERVER_FLAG,
      },
      positionals: { min: 1, max: 1 },
    },
  ]),
) as Record<UserControlAction, CommandSpec>;

/** `sluice pause|resume|cancel RUN_ID`: checks the run's state, then publishes the control event. */
export function controlCommand(action: UserControlAction) {
  return async function (argv: string[], env: Env, output: Output): Promise<number> {
    const { values, positionals } = parseCommand<{
      reason?: string;
      'requested-by'?: string;
      json: boolean;
      server?: string;
    }>(CONTROLS[action], argv);
    const runId = positionals[0]!;
    if ((values.reason?.length ?? 0) > 500) throw new CliError('--reason takes at most 500 characters');
    const bus = await connectBus(busConfigOf(values, env), silentLogger);
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
