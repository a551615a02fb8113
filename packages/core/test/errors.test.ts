import { OutcomeErrorSchema } from '@sluice/contracts';
import { describe, expect, it } from 'vitest';

import {
  BundleDigestMismatchError,
  BundleUnavailableError,
  DatabaseError,
  DigestMismatchError,
  DirtyError,
  DriftError,
  HostUnavailableError,
  InvalidTenantError,
  LockedError,
  LockTimeoutError,
  MigrationSetError,
  MigrationSqlError,
  PermanentError,
  SluiceError,
  TargetError,
  toOutcomeError,
  TransientError,
} from '../src/errors.js';

describe('error classes', () => {
  const cases: [SluiceError, string, boolean][] = [
    [new LockedError('held'), 'locked', true],
    [new LockTimeoutError('waited', '55P03'), 'lock_timeout', true],
    [new HostUnavailableError('refused', 'db:5432'), 'host_unavailable', true],
    [new DigestMismatchError('other set'), 'digest_mismatch', true],
    [new BundleUnavailableError('store down'), 'bundle_unavailable', true],
    [new BundleDigestMismatchError('altered'), 'bundle_digest_mismatch', false],
    [new MigrationSqlError('bad sql', '42601', { version: 3 }), 'sql_error', false],
    [new DatabaseError('denied', '42501'), 'database_error', false],
    [new DirtyError('dirty', { version: 2 }), 'dirty', false],
    [new DriftError([{ kind: 'missing_file', version: 1 }]), 'drift', false],
    [new TargetError('behind'), 'invalid_target', false],
    [new MigrationSetError('bad name'), 'invalid_migration_set', false],
    [new InvalidTenantError('no id'), 'invalid_tenant', false],
  ];

  it.each(cases)('%o has a stable code and transient flag', (error, code, transient) => {
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(SluiceError);
    expect(error).toBeInstanceOf(transient ? TransientError : PermanentError);
    expect(error).not.toBeInstanceOf(transient ? PermanentError : TransientError);
    expect(error.code).toBe(code);
    expect(error.transient).toBe(transient);
    expect(error.name).toBe(error.constructor.name);
    const outcome = error.toOutcomeError();
    expect(outcome).toMatchObject({ code, transient, message: error.message });
    expect(OutcomeErrorSchema.safeParse(outcome).success).toBe(true);
  });

  it('keeps the cause', () => {
    const cause = new Error('ECONNREFUSED');
    expect(new HostUnavailableError('refused', 'db:5432', undefined, { cause }).cause).toBe(cause);
    expect(new LockedError('held', { cause }).cause).toBe(cause);
  });
});

describe('toOutcomeError', () => {
  it('carries the version only when there is one', () => {
    expect(new DirtyError('dirty', { version: 4 }).toOutcomeError()).toEqual({
      code: 'dirty',
      message: 'dirty',
      transient: false,
      version: 4,
    });
    expect(new LockedError('held').toOutcomeError()).toEqual({ code: 'locked', message: 'held', transient: true });
    expect(new TargetError('t', { version: 0 }).toOutcomeError().version).toBe(0);
  });

  it('carries the SQLSTATE of database errors', () => {
    expect(new LockTimeoutError('waited', '55P03', { version: 7 }).toOutcomeError()).toEqual({
      code: 'lock_timeout',
      message: 'waited',
      transient: true,
      version: 7,
      sqlState: '55P03',
    });
    expect(new MigrationSqlError('syntax', '42601', { version: 3 }).toOutcomeError()).toEqual({
      code: 'sql_error',
      message: 'syntax',
      transient: false,
      version: 3,
      sqlState: '42601',
    });
    expect(new HostUnavailableError('too many', 'h:5432', '53300').toOutcomeError()).toEqual({
      code: 'host_unavailable',
      message: 'too many',
      transient: true,
      sqlState: '53300',
    });
    expect(new DatabaseError('denied', '42501').toOutcomeError().sqlState).toBe('42501');
  });

  it('leaves sqlState out when it is unknown', () => {
    expect('sqlState' in new MigrationSqlError('x', undefined, { version: 1 }).toOutcomeError()).toBe(false);
    expect('sqlState' in new HostUnavailableError('x', 'h:1').toOutcomeError()).toBe(false);
    expect('sqlState' in new DatabaseError('x', undefined).toOutcomeError()).toBe(false);
  });

  it('lists the drifted versions', () => {
    const error = new DriftError([
      { kind: 'out_of_order', version: 2 },
      { kind: 'checksum_mismatch', version: 5 },
    ]);
    expect(error.message).toBe('drift: out_of_order at 2, checksum_mismatch at 5');
    expect(error.toOutcomeError()).toEqual({
      code: 'drift',
      message: error.message,
      transient: false,
      versions: [2, 5],
    });
  });

  it('keeps host and version fields on the error itself', () => {
    const error = new HostUnavailableError('refused', 'db:5432', '08006');
    expect(error.host).toBe('db:5432');
    expect(error.sqlState).toBe('08006');
    expect(new MigrationSqlError('x', '42601', { version: 9 }).version).toBe(9);
  });

  it('turns anything else into a permanent internal error without a stack', () => {
    const outcome = toOutcomeError(new TypeError('undefined is not a function'));
    expect(outcome).toEqual({ code: 'internal', message: 'undefined is not a function', transient: false });
    expect(toOutcomeError('plain string')).toEqual({ code: 'internal', message: 'plain string', transient: false });
    expect(toOutcomeError(undefined)).toEqual({ code: 'internal', message: 'undefined', transient: false });
    expect(toOutcomeError(42).message).toBe('42');
  });

  it('delegates to a SluiceError', () => {
    expect(toOutcomeError(new LockTimeoutError('w', '55P03'))).toEqual({
      code: 'lock_timeout',
      message: 'w',
      transient: true,
      sqlState: '55P03',
    });
  });
});
