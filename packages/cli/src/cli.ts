import { readFileSync } from 'node:fs';

import { ConfigError } from '@sluice/core';

import { CliError, EXIT } from './cli-error.js';
import { type CommandSpec, usageOf } from './command-spec.js';
import { FLEET, fleetCommand } from './commands/fleet.js';
import { LINT, lintCommand } from './commands/lint.js';
import { MIGRATE, migrateCommand } from './commands/migrate.js';
import { controlCommand, CONTROLS } from './commands/run-control.js';
import { RUNS, runsCommand } from './commands/runs.js';
import { STATUS, statusCommand } from './commands/status.js';
import { BASELINE, baselineCommand, REPAIR, repairCommand } from './commands/tenant-admin.js';
import { TENANTS, tenantsCommand } from './commands/tenants.js';
import { type Output, processOutput } from './output.js';

type Command = (argv: string[], env: NodeJS.ProcessEnv, output: Output) => Promise<number>;

/** Every command with the spec its flags and its help come from. */
export const COMMANDS: ReadonlyArray<[CommandSpec, Command]> = [
  [MIGRATE, migrateCommand],
  [STATUS, statusCommand],
  [RUNS, runsCommand],
  [TENANTS, tenantsCommand],
  [CONTROLS.pause, controlCommand('pause')],
  [CONTROLS.resume, controlCommand('resume')],
  [CONTROLS.cancel, controlCommand('cancel')],
  [REPAIR, repairCommand],
  [BASELINE, baselineCommand],
  [LINT, lintCommand],
  [FLEET, fleetCommand],
];

/** The version of this package, read from its package.json (one folder above `src/` and `dist/`). */
export function cliVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...COMMANDS.map(([spec]) => `sluice ${spec.name} ${spec.args}`.length)) + 2;
  return `sluice: schema migrations across a fleet of tenant databases

Usage: sluice COMMAND [options]      sluice COMMAND --help      sluice --version

Commands:
${COMMANDS.map(([spec]) => `  ${`sluice ${spec.name} ${spec.args}`.padEnd(width)}${spec.summary}`).join('\n')}

Settings come from the environment: NATS_URL (or -s/--server), SLUICE_REGISTRY, SLUICE_TENANTS_FILE,
SLUICE_MIGRATIONS_DIR, PG* (see the README); NATS credentials and TLS from NATS_USER/NATS_PASSWORD,
NATS_TOKEN, NATS_NKEY, NATS_CREDS, NATS_CA, NATS_CERT/NATS_KEY (docs/security.md).`;
}

/** Runs the CLI and returns its exit code (tests call this directly). */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv, output: Output = processOutput): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    output.out(`sluice ${cliVersion()}`);
    return EXIT.ok;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    output.out(usage());
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS.find(([spec]) => spec.name === name);
  if (!command) {
    output.err(`unknown command "${name}"\n\n${usage()}`);
    return EXIT.usage;
  }
  const [spec, run] = command;
  if (rest.includes('--help') || rest.includes('-h')) {
    output.out(usageOf(spec));
    return EXIT.ok;
  }
  try {
    return await run(rest, env, output);
  } catch (error) {
    if (error instanceof CliError) {
      output.err(`sluice ${name}: ${error.message}`);
      return error.exitCode;
    }
    if (error instanceof ConfigError) {
      output.err(`sluice ${name}: ${error.message}`);
      return EXIT.usage;
    }
    output.err(`sluice ${name}: ${(error as Error).message}`);
    return EXIT.failure;
  }
}
