import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { ChangedByLaterRunError, DirtyError, DriftError, IrreversibleError } from '../src/errors.js';
import { type JournalEntry, planTenant, rollbackTargetOf } from '../src/migration-plan.js';
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

  it('refuses a target behind the applied version when the versions above it have no down file', () => {
    const error = thrown(() => planTenant(set, [entry(1), entry(2), entry(3)], 2));
    expect(error).toBeInstanceOf(IrreversibleError);
    expect((error as IrreversibleError).code).toBe('irreversible');
    expect((error as IrreversibleError).message).toMatch(
      /cannot go back to 2: version 3 \(0003_index.sql\) has no down file/,
    );
    expect(() => planTenant(set, [entry(1)], 0)).toThrow(IrreversibleError);
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

describe('planTenant below the tenant (down files)', () => {
  const reversible: MigrationSet = createMigrationSet(
    [
      { file: '0001_users.sql', sql: 'CREATE TABLE users (id int);' },
      { file: '0002_orders.sql', sql: 'CREATE TABLE orders (id int);' },
      { file: '0002_orders.down.sql', sql: 'DROP TABLE orders;' },
      { file: '0003_index.sql', sql: '-- sluice:no-transaction\nCREATE INDEX CONCURRENTLY i ON orders (id);' },
      { file: '0003_index.down.sql', sql: '-- sluice:no-transaction\nDROP INDEX CONCURRENTLY i;' },
      { file: '0004_audit.sql', sql: 'CREATE TABLE audit (id int);' },
      { file: '0004_audit.down.sql', sql: 'DROP TABLE audit;' },
    ],
    parser,
  );
  const row = (version: number, overrides: Partial<JournalEntry> = {}): JournalEntry => {
    const m = reversible.migrations.find((x) => x.version === version)!;
    return {
      version,
      name: m.name,
      checksum: m.checksum,
      status: 'applied',
      runId: 'run-1',
      downChecksum: m.down?.checksum ?? null,
      ...overrides,
    };
  };
  const all = [row(1), row(2), row(3), row(4)];

  it('plans the down files above the target, newest first, and nothing to apply', () => {
    const plan = planTenant(reversible, all, 1);
    expect(plan.undo.map((m) => m.version)).toEqual([4, 3, 2]);
    expect(plan.undo[1]!.down!.transactional).toBe(false);
    expect(plan.pending).toEqual([]);
    expect(plan.current).toBe(4);
  });

  it('refuses the whole way back when one version on it has no down file, naming it', () => {
    const error = thrown(() => planTenant(reversible, all, 0)) as IrreversibleError;
    expect(error).toBeInstanceOf(IrreversibleError);
    expect(error.versions).toEqual([1]);
    expect(error.toOutcomeError()).toMatchObject({ code: 'irreversible', transient: false, versions: [1] });
    expect(error.message).toContain('nothing was undone');
  });

  it('refuses a down file changed since its up file ran, unless the request allows it', () => {
    const journal = [row(1), row(2), row(3, { downChecksum: 'older' }), row(4)];
    const error = thrown(() => planTenant(reversible, journal, 1)) as DriftError;
    expect(error).toBeInstanceOf(DriftError);
    expect(error.drift).toEqual([{ kind: 'down_checksum_mismatch', version: 3 }]);
    expect(planTenant(reversible, journal, 1, undefined, { allowChangedDown: true }).undo).toHaveLength(3);
  });

  it('accepts a down file written after its up file ran (nothing recorded to compare with)', () => {
    const journal = [row(1), row(2, { downChecksum: null }), row(3), row(4, { downChecksum: undefined })];
    expect(planTenant(reversible, journal, 1).undo.map((m) => m.version)).toEqual([4, 3, 2]);
  });

  it('checks the up files for drift before going down', () => {
    expect(() => planTenant(reversible, [row(1), row(2, { checksum: 'edited' }), row(3)], 1)).toThrow(DriftError);
  });
});

describe('rollbackTargetOf', () => {
  const row = (version: number, runId: string | null): JournalEntry => ({
    version,
    name: `v${version}`,
    checksum: 'c',
    status: 'applied',
    runId,
  });

  it('is the version the run found: the newest below its own rows', () => {
    expect(rollbackTargetOf([row(1, 'a'), row(2, 'a'), row(3, 'r'), row(4, 'r')], 'r')).toBe(2);
  });

  it('is 0 when the run found a fresh database', () => {
    expect(rollbackTargetOf([row(1, 'r'), row(2, 'r')], 'r')).toBe(0);
  });

  it('is null for a tenant the run did not change', () => {
    expect(rollbackTargetOf([row(1, 'a'), row(2, 'a')], 'r')).toBeNull();
    expect(rollbackTargetOf([], 'r')).toBeNull();
  });

  it('refuses a tenant a later run changed, naming the run and versions, unless forced', () => {
    const journal = [row(1, 'a'), row(2, 'r'), row(3, 'later'), row(4, null)];
    const error = thrown(() => rollbackTargetOf(journal, 'r')) as ChangedByLaterRunError;
    expect(error).toBeInstanceOf(ChangedByLaterRunError);
    expect(error.toOutcomeError()).toMatchObject({ code: 'changed_by_later_run', transient: false, versions: [3, 4] });
    expect(error.message).toMatch(/versions 3, 4 by later, no run/);
    expect(rollbackTargetOf(journal, 'r', { force: true })).toBe(1);
  });

  it('takes back what is left of a run partly undone already', () => {
    expect(rollbackTargetOf([row(1, 'a'), row(2, 'r')], 'r')).toBe(1);
  });
});
