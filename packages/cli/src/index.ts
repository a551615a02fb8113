export { cliVersion, COMMANDS, runCli } from './cli.js';
export { CliError, EXIT } from './cli-error.js';
export { type CommandSpec, type FlagSpec, usageOf } from './command-spec.js';
