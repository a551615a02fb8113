/** Exit codes of the `sluice` command. */
export const EXIT = {
  ok: 0,
  /** The run ended, but not `succeeded` (partial, failed, cancelled). */
  runNotSucceeded: 1,
  /** Wrong arguments or settings. */
  usage: 2,
  /** The request was rejected by the planner. */
  rejected: 3,
  /** `--timeout` passed before the run completed. */
  timeout: 4,
  /** Something else went wrong (unreachable NATS, database error). */
  failure: 5,
  /** `--wait`: the run was lost with the JetStream store (`sluice runs recover RUN_ID` rebuilds its result). */
  lost: 6,
} as const;

/** An error the CLI reports as one line and an exit code, without a stack trace. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}
