#!/usr/bin/env node
import { ConfigError } from '@sluice/core';

import { CliError, EXIT } from './cli-error.js';
import { LINT_USAGE, lintCommand } from './commands/lint.js';
import { MIGRATE_USAGE, migrateCommand } from './commands/migrate.js';
import { CONTROL_USAGE, controlCommand } from './commands/run-control.js';
import { RUNS_USAGE, runsCommand } from './commands/runs.js';
import { STATUS_USAGE, statusCommand } from './commands/status.js';
import { BASELINE_USAGE, baselineCommand, REPAIR_USAGE, repairCommand } from './commands/tenant-admin.js';
import { TENANTS_USAGE, tenantsCommand } from './commands/tenants.js';
import { type Output, processOutput } from './output.js';

const USAGE = `sluice: schema migrations across a fleet of tenant databases

Commands:
  ${MIGRATE_USAGE.split('\n')[0]}
  ${STATUS_USAGE.split('\n')[0]}
  ${RUNS_USAGE.split('\n')[0]}
  ${TENANTS_USAGE.split('\n')[0]}
  ${CONTROL_USAGE.pause.split('\n')[0]}
  ${CONTROL_USAGE.resume.split('\n')[0]}
  ${CONTROL_USAGE.cancel.split('\n')[0]}
  ${REPAIR_USAGE.split('\n')[0]}
  ${BASELINE_USAGE.split('\n')[0]}
  ${LINT_USAGE.split('\n')[0]}

Settings come from the environment: NATS_URL, SLUICE_REGISTRY, SLUICE_TENANTS_FILE,
SLUICE_MIGRATIONS_DIR, PG* (see the README); NATS credentials and TLS from NATS_USER/NATS_PASS,
NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY (docs/security.md).
'sluice COMMAND --help' explains a command.`;

const COMMANDS = {
  migrate: [migrateCommand, MIGRATE_USAGE],
  status: [statusCommand, STATUS_USAGE],
  runs: [runsCommand, RUNS_USAGE],
  tenants: [tenantsCommand, TENANTS_USAGE],
  pause: [controlCommand('pause'), CONTROL_USAGE.pause],
  resume: [controlCommand('resume'), CONTROL_USAGE.resume],
  cancel: [controlCommand('cancel'), CONTROL_USAGE.cancel],
  repair: [repairCommand, REPAIR_USAGE],
  baseline: [baselineCommand, BASELINE_USAGE],
  lint: [lintCommand, LINT_USAGE],
} as const;

/** Runs the CLI and returns its exit code (tests call this directly). */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, output: Output = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    output.out(USAGE);
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name as keyof typeof COMMANDS];
  if (!command) {
    output.err(`unknown command "${name}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    output.out(command[1]);
    return EXIT.ok;
  }
  try {
    return await command[0](rest, env, output);
  } catch (error) {
    if (error instanceof CliError) {
      output.err(`sluice ${name}: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      output.err(`sluice ${name}: ${(error as Error).message}`);
      return EXIT.usage;
    }
    output.err(`sluice ${name}: ${(error as Error).message}`);
    return EXIT.failure;
  }
}

process.exitCode = await runCli(process.argv.slice(2), process.env);
