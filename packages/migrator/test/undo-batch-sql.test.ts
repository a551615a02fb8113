import { describe, expect, it } from 'vitest';

import { downStep } from '../src/down-steps.js';
import { DEFAULT_JOURNAL, journalDigest } from '../src/journal.js';
import { undoBatchSql } from '../src/transaction-batch.js';
import { migrationSet } from './support/postgres.js';

const set = migrationSet({
  '0001_one.sql': 'CREATE TABLE one (id int);',
  '0001_one.down.sql': '-- sluice:lock-timeout 2s\nDROP TABLE one;',
  '0002_two.sql': 'CREATE TABLE two (id int);',
  '0002_two.down.sql': 'DROP TABLE two;',
});
const [one, two] = set.migrations as [(typeof set.migrations)[0], (typeof set.migrations)[0]];
const rows = set.migrations.map((m) => ({
  version: m.version,
  name: m.name,
  checksum: m.checksum,
  status: 'applied' as const,
  runId: 'r',
}));

describe('undoBatchSql', () => {
  const sql = undoBatchSql(
    [downStep(two), downStep(one)],
    rows,
    {
      journal: DEFAULT_JOURNAL,
      timeoutSettings: (m) => (m.lockTimeoutMs ? [`SET LOCAL lock_timeout = ${m.lockTimeoutMs}`] : []),
      journalDelete: (m) => `DELETE FROM j WHERE version = ${m.version}`,
    },
    ['LOCK'],
    ['UNLOCK'],
  );
  const statements = sql.split(';\n');

  it('runs each down file newest first, in its own transaction with the deletion of its row', () => {
    const order = [
      'LOCK',
      'BEGIN',
      'DROP TABLE two',
      'DELETE FROM j WHERE version = 2 RETURNING',
      'COMMIT',
      'BEGIN',
      'SET LOCAL lock_timeout = 2000',
      'DROP TABLE one',
      'DELETE FROM j WHERE version = 1 RETURNING',
      'COMMIT',
      'UNLOCK',
    ];
    let at = -1;
    for (const part of order) {
      const next = sql.indexOf(part, at + 1);
      expect(next, `${part} after position ${at}`).toBeGreaterThan(at);
      at = next;
    }
    expect(sql.match(/^BEGIN;$/gm)).toHaveLength(2);
  });

  it('guards each file with the journal as the plan expects it at that point', () => {
    const guards = statements.filter((s) => s.startsWith('DO $sluice$'));
    expect(guards[0]).toContain(journalDigest(rows));
    expect(guards[1]).toContain(journalDigest(rows.filter((r) => r.version !== 2)));
  });
});
