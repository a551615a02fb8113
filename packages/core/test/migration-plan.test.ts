import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { DirtyError, DriftError, TargetError } from '../src/errors.js';
import { type JournalEntry, planTenant } from '../src/migration-plan.js';
import { createMigrationSet, type MigrationSet } from '../src/migration-set.js';

const parser = await loadSqlParser();

const set: MigrationSet = createMigrationSet(
  [
    { file: '0001_users.sql', sql: 'CREATE TABLE users (id int);' },
    { file: '0002_orders.sql', sql: 'CREATE TABLE orders (id int);' },
    { file: '0003_index.sql', sql: '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY i ON orders (id);' },
    { file: '0004_audit.sql', sql: 'CREATE TABLE audit (id int);' },
  ],
  parser,
);

const migration = (version: number) => set.migrations.find((m) => m.version === version)!;

function entry(version: number, overrides: Partial<JournalEntry> = {}): JournalEntry {
  const m = migration(version);
  return { version, name: m.name, checksum: m.checksum, status: 'applied', runId: 'run-1', ...overrides };
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

const versions = (plan: { pending: { version: number }[] }) => plan.pending.map((m) => m.version);

describe('planTenant', () => {
  it('plans every migration for a fresh database', () => {
    const plan = planTenant(set, [], 4);
    expect(plan.current).toBeNull();
    expect(versions(plan)).toEqual([1, 2, 3, 4]);
    expect(plan.pending[0]).toBe(migration(1));
    expect(plan.appliedByRun).toEqual([]);
  });

  it('plans up to the target only', () => {
    expect(versions(planTenant(set, [], 2))).toEqual([1, 2]);
    expect(versions(planTenant(set, [entry(1)], 3))).toEqual([2, 3]);
  });

  it('plans nothing for target 0 on a fresh database', () => {
    const plan = planTenant(set, [], 0);
    expect(plan.current).toBeNull();
    expect(plan.pending).toEqual([]);
  });

  it('plans the rest for a partially migrated tenant', () => {
    const plan = planTenant(set, [entry(1), entry(2)], 4);
    expect(plan.current).toBe(2);
    expect(versions(plan)).toEqual([3, 4]);
  });

  it('plans nothing for an up-to-date tenant', () => {
    const journal = [1, 2, 3, 4].map((v) => entry(v));
    const plan = planTenant(set, journal, 4);
    expect(plan.current).toBe(4);
    expect(plan.pending).toEqual([]);
  });

  it('does not care about journal order', () => {
    const plan = planTenant(set, [entry(2), entry(1)], 4);
    expect(plan.current).toBe(2);
    expect(versions(plan)).toEqual([3, 4]);
  });

  it('refuses a target behind the applied version', () => {
    const error = thrown(() => planTenant(set, [entry(1), entry(2), entry(3)], 2));
    expect(error).toBeInstanceOf(TargetError);
    expect((error as TargetError).code).toBe('invalid_target');
    expect((error as TargetError).message).toMatch(/target 2 is behind the applied version 3/);
    expect(() => planTenant(set, [entry(1)], 0)).toThrow(TargetError);
  });

  it('accepts a target equal to the applied version', () => {
    expect(planTenant(set, [entry(1), entry(2)], 2).pending).toEqual([]);
  });

  it('refuses a dirty tenant, naming the version', () => {
    const error = thrown(() => planTenant(set, [entry(1), entry(2), entry(3, { status: 'dirty' })], 4));
    expect(error).toBeInstanceOf(DirtyError);
    const dirty = error as DirtyError;
    expect(dirty.version).toBe(3);
    expect(dirty.code).toBe('dirty');
    expect(dirty.transient).toBe(false);
    expect(dirty.message).toContain('index');
    expect(dirty.message).toContain('sluice repair --version 3');
  });

  it('reports dirty before drift or a bad target', () => {
    const journal = [entry(1, { checksum: 'x' }), entry(2, { status: 'dirty' })];
    expect(() => planTenant(set, journal, 0)).toThrow(DirtyError);
  });

  describe('drift', () => {
    const drift = (journal: JournalEntry[], target = 4) => {
      const error = thrown(() => planTenant(set, journal, target));
      expect(error).toBeInstanceOf(DriftError);
      return error as DriftError;
    };

    it('reports a checksum mismatch', () => {
      const error = drift([entry(1), entry(2, { checksum: 'edited' })]);
      expect(error.drift).toEqual([{ kind: 'checksum_mismatch', version: 2 }]);
      expect(error.message).toBe('drift: checksum_mismatch at 2');
      expect(error.toOutcomeError()).toMatchObject({ code: 'drift', transient: false, versions: [2] });
    });

    it('reports an applied version whose file is missing', () => {
      expect(
        drift(
          [
            entry(1),
            entry(2),
            entry(3),
            entry(4),
            { version: 9, name: 'gone', checksum: 'c', status: 'applied', runId: null },
          ],
          9,
        ).drift,
      ).toEqual([{ kind: 'missing_file', version: 9 }]);
      const error = drift(
        [entry(1), entry(2), { version: 7, name: 'gone', checksum: 'c', status: 'applied', runId: null }],
        7,
      );
      expect(error.drift).toEqual([
        { kind: 'out_of_order', version: 3 },
        { kind: 'out_of_order', version: 4 },
        { kind: 'missing_file', version: 7 },
      ]);
      expect(error.message).toBe('drift: out_of_order at 3, out_of_order at 4, missing_file at 7');
    });

    it('reports a file older than the applied version that was never applied', () => {
      const error = drift([entry(1), entry(3)]);
      expect(error.drift).toEqual([{ kind: 'out_of_order', version: 2 }]);
    });

    it('sorts several kinds of drift by version', () => {
      const error = drift([entry(2, { checksum: 'x' }), entry(4)]);
      expect(error.drift).toEqual([
        { kind: 'out_of_order', version: 1 },
        { kind: 'checksum_mismatch', version: 2 },
        { kind: 'out_of_order', version: 3 },
      ]);
      expect(error.toOutcomeError().versions).toEqual([1, 2, 3]);
    });

    it('reports drift even when the target is behind', () => {
      expect(() => planTenant(set, [entry(1), entry(2, { checksum: 'x' })], 0)).toThrow(DriftError);
    });

    it('is not raised by a file added after the newest applied version', () => {
      expect(() => planTenant(set, [entry(1), entry(2)], 4)).not.toThrow();
    });
  });

  describe('appliedByRun', () => {
    const journal = [
      entry(1, { runId: 'old' }),
      entry(2, { runId: 'run-9' }),
      entry(3, { runId: null }),
      entry(4, { runId: 'run-9' }),
    ];

    it('lists the versions the given run applied', () => {
      expect(planTenant(set, journal, 4, 'run-9').appliedByRun).toEqual([2, 4]);
      expect(planTenant(set, journal, 4, 'old').appliedByRun).toEqual([1]);
    });

    it('is empty without a run id or for another run', () => {
      expect(planTenant(set, journal, 4).appliedByRun).toEqual([]);
      expect(planTenant(set, journal, 4, 'run-other').appliedByRun).toEqual([]);
    });
  });
});
