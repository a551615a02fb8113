import { DatabaseError } from '@sluice/core';
import { describe, expect, it } from 'vitest';

import { classifyPgError } from '../src/pg-errors.js';

describe('classifyPgError', () => {
  it('says what to set when the server wants a password and none was given', () => {
    // The error pg raises when a SCRAM login has no password from PGPASSWORD or a pgpass file.
    const error = classifyPgError(
      new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'),
      'db1:5432',
    );
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.transient).toBe(false);
    expect(error.message).toBe(
      'db1:5432: the server asks for a password and none was given (set PGPASSWORD, or an entry in the pgpass file: PGPASSFILE or ~/.pgpass)',
    );
  });
});
