import { DatabaseError } from '@sluice/core';
import { describe, expect, it } from 'vitest';

import { classifyPgError, isMissingRelationError } from '../src/pg-errors.js';

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

describe('isMissingRelationError', () => {
  it('knows a missing table or schema, as pg throws it and as classifyPgError types it', () => {
    const raw = (code: string) => Object.assign(new Error('relation "sluice_migrations" does not exist'), { code });
    expect(isMissingRelationError(raw('42P01'))).toBe(true);
    expect(isMissingRelationError(raw('3F000'))).toBe(true);
    expect(isMissingRelationError(classifyPgError(raw('42P01'), 'db1:5432'))).toBe(true);
    // A permission error on the journal is not a missing one: it must surface.
    expect(isMissingRelationError(raw('42501'))).toBe(false);
    expect(isMissingRelationError(classifyPgError(raw('42501'), 'db1:5432'))).toBe(false);
    expect(isMissingRelationError(undefined)).toBe(false);
  });
});
