import type pg from 'pg';

/**
 * Runs a `no-transaction` file's statements one at a time (forward or down: the journal row around
 * them is the caller's), with the file's session settings already set. On a failure the settings
 * are reset and `onFailure` says what to throw, knowing which statement failed (index 0: nothing
 * ran, so the caller may undo its journal mark). Returns the statements' time in ms.
 */
export async function runStatementsOneByOne(
  client: pg.ClientBase,
  statements: readonly string[],
  hasSettings: boolean,
  onFailure: (error: unknown, index: number) => Promise<Error>,
): Promise<number> {
  const started = Date.now();
  for (const [index, statement] of statements.entries()) {
    try {
      await client.query(statement);
    } catch (error) {
      const failure = await onFailure(error, index);
      if (hasSettings) await client.query('RESET lock_timeout; RESET statement_timeout').catch(() => undefined);
      throw failure;
    }
  }
  return Date.now() - started;
}
