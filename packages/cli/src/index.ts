export { CliError, EXIT } from './cli-error.js';
