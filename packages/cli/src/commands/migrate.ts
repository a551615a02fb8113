import { type Bus, connectBus, ensureTopology } from '@sluice/bus';
import { type MigrateRequestInput, MigrateRequestSchema, REQUEST_SUBJECT, requestMsgId } from '@sluice/contracts';
import { durationProblem, type Env, parseDuration } from '@sluice/core';
import { createLogger } from '@sluice/telemetry';

import { CliError, EXIT } from '../cli-error.js';
import { busConfigOf, type CommandSpec, JSON_FLAG, parseCommand, SERVER_FLAG } from '../command-spec.js';
import type { Output } from '../output.js';
import { watchRun } from '../run-watcher.js';

export const MIGRATE: CommandSpec = {
  name: 'migrate',
  args: '',
  summary: 'Publishes a migration request, and with --wait follows the run to its end.',
  description: `--canary N migrates N tenants first and the rest only once all of them succeeded;
--max-failures / --max-failure-rate stop the run (the rest skipped, status failed) when failures
pass them. The planner lints the migration set first and rejects the request when it finds errors
(sluice lint shows them); --lint warn runs it anyway, with the findings in the run's report. With
--wait, follows the run — a live bar on a terminal, plain lines elsewhere — and
exits 0 when it succeeded, 1 when it did not, 3 when the request was rejected, 4 on --timeout,
6 when the run was lost with the JetStream store (sluice runs recover RUN_ID rebuilds its result).`,
  flags: {
    target: { type: 'string', default: 'latest', value: 'latest|VERSION', help: 'the version to migrate to' },
    'run-id': { type: 'string', value: 'ID', help: 'the run id (default: run-<time>-<random>); a repeat is one run' },
    tenants: { type: 'string', value: 'ID,ID...', help: 'only these tenants (an unknown id fails as not_found)' },
    tag: { type: 'string', multiple: true, value: 'KEY=VALUE', help: 'only tenants with this tag' },
    canary: { type: 'string', value: 'N', help: 'migrate N tenants first, the fleet once they succeeded' },
    'max-failures': { type: 'string', value: 'N', help: 'stop the run after more than N failures' },
    'max-failure-rate': { type: 'string', value: 'R', help: 'stop the run when failures pass this share (0.05 or 5%)' },
    'dry-run': { type: 'boolean', default: false, help: 'plan and check every tenant, apply nothing' },
    lint: { type: 'string', value: 'error|warn', help: 'warn: run even when the set has lint errors (default error)' },
    'allow-changed-down': {
      type: 'boolean',
      default: false,
      help: 'a target below a tenant: run down files changed since their up file ran',
    },
    trust: {
      type: 'string',
      value: 'verified|fleet-state',
      help: 'fleet-state: settle tenants the fleet state shows current at the target without reading them (default verified)',
    },
    'requested-by': { type: 'string', value: 'NAME', help: 'who asked, recorded in the run' },
    wait: { type: 'boolean', default: false, help: 'follow the run until it completes' },
    timeout: { type: 'string', value: 'DURATION', help: 'with --wait, stop waiting after this (30s, 10m)' },
    ...JSON_FLAG,
    ...SERVER_FLAG,
  },
  positionals: { min: 0, max: 0 },
};

export function wholeNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new CliError(`${flag} takes a whole number, got "${value}"`);
  return Number(value);
}

export function rate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = value.endsWith('%') ? Number(value.slice(0, -1)) / 100 : Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new CliError(`--max-failure-rate takes a share from 0 to 1 (or 0% to 100%), got "${value}"`);
  return n;
}

interface MigrateValues extends RequestValues {
  target: string;
  trust?: string;
}

export async function migrateCommand(argv: string[], env: Env, output: Output): Promise<number> {
  const { values } = parseCommand<MigrateValues>(MIGRATE, argv);
  const runId =
    values['run-id'] ??
    `run-${new Date()
      .toISOString()
      .replace(/[-:.TZ]/g, '')
      .slice(0, 14)}-${Math.random().toString(36).slice(2, 8)}`;
  const input: MigrateRequestInput = {
    runId,
    target: /^\d+$/.test(values.target) ? Number(values.target) : values.target,
    ...requestScope(values),
    ...(values.trust !== undefined ? { trust: values.trust as 'verified' | 'fleet-state' } : {}),
  };
  return sendRequest(input, values, env, output);
}

/** The flags a migrate and a rollback share, as request fields: --run-id aside, who, which tenants, how. */
export interface ScopeValues extends Record<string, string | boolean | string[] | undefined> {
  tenants?: string;
  tag?: string[];
  'dry-run': boolean;
  'requested-by'?: string;
  canary?: string;
  'max-failures'?: string;
  'max-failure-rate'?: string;
  lint?: string;
  'allow-changed-down'?: boolean;
}

/** The flags of a command that starts a run (migrate, rollback): its scope, its id, and how to follow it. */
export interface RequestValues extends ScopeValues {
  'run-id'?: string;
  wait: boolean;
  timeout?: string;
  json: boolean;
  server?: string;
}

/** The request fields of the shared flags (tenants by id or tag, dry run, rollout, lint, changed down files). */
export function requestScope(values: ScopeValues): Partial<MigrateRequestInput> {
  if (values.tenants && values.tag) throw new CliError('use either --tenants or --tag, not both');
  const tags = values.tag?.map((t) => {
    const eq = t.indexOf('=');
    if (eq <= 0) throw new CliError(`--tag takes KEY=VALUE, got "${t}"`);
    return [t.slice(0, eq), t.slice(eq + 1)] as const;
  });
  const rollout = {
    ...(values.canary !== undefined ? { canary: wholeNumber('--canary', values.canary) } : {}),
    ...(values['max-failures'] !== undefined
      ? { maxFailures: wholeNumber('--max-failures', values['max-failures']) }
      : {}),
    ...(values['max-failure-rate'] !== undefined ? { maxFailureRate: rate(values['max-failure-rate']) } : {}),
  };
  return {
    ...(values.tenants
      ? {
          tenants: {
            ids: values.tenants
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          },
        }
      : {}),
    ...(tags ? { tenants: { tags: Object.fromEntries(tags) } } : {}),
    ...(values['dry-run'] ? { dryRun: true } : {}),
    ...(values['requested-by'] ? { requestedBy: values['requested-by'] } : {}),
    ...(Object.keys(rollout).length > 0 ? { rollout } : {}),
    ...(values.lint !== undefined ? { lint: values.lint as 'error' | 'warn' } : {}),
    ...(values['allow-changed-down'] ? { allowChangedDown: true } : {}),
  };
}

/**
 * Checks a request against the contract, publishes it and, with --wait, follows its run: the path
 * every command that starts a run takes (migrate, rollback).
 */
export async function sendRequest(
  input: MigrateRequestInput,
  values: Pick<RequestValues, 'wait' | 'json' | 'timeout' | 'server'>,
  env: Env,
  output: Output,
  /** With --wait, once the run has completed (exit 0 or 1): more to print from the bus. */
  afterCompleted?: (bus: Bus) => Promise<void>,
): Promise<number> {
  const { runId } = input;
  const parsed = MigrateRequestSchema.safeParse(input);
  if (!parsed.success) {
    throw new CliError(
      `invalid request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; ')}`,
    );
  }
  const timeoutMs = values.timeout === undefined ? undefined : parseDuration(values.timeout);
  if (values.timeout !== undefined && timeoutMs === undefined)
    throw new CliError(`--timeout takes a duration with a unit: ${durationProblem(values.timeout)}`);

  const bus = await connectBus(busConfigOf(values, env), silentLogger);
  try {
    await ensureTopology(bus.jsm);
    // Watch before publishing, so neither a rejection nor a fast completion can be missed.
    const watching = values.wait
      ? await watchRun(bus, runId, { output, json: values.json, ...(timeoutMs ? { timeoutMs } : {}) })
      : undefined;
    await bus.publish(REQUEST_SUBJECT, input, { msgId: requestMsgId(runId) });
    if (!watching) {
      output.out(values.json ? JSON.stringify({ runId, published: true }) : `published request ${runId}`);
      return EXIT.ok;
    }
    if (!values.json) output.err(`published request ${runId}; waiting for it to complete`);
    const code = await watching.result;
    if (afterCompleted && (code === EXIT.ok || code === EXIT.runNotSucceeded)) await afterCompleted(bus);
    return code;
  } finally {
    await bus.close();
  }
}

/** The CLI logs nothing of its own plumbing; errors surface as messages and exit codes. */
export const silentLogger = createLogger({ service: 'cli', level: 'silent' });
