import { createMigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { describe, expect, it } from 'vitest';

import { requestFingerprint, validateRequest } from '../src/request-validation.js';

const parser = await loadSqlParser();

const set = createMigrationSet(
  [
    { file: '0001_a.sql', sql: 'SELECT 1;' },
    { file: '0002_b.sql', sql: 'SELECT 2;' },
  ],
  parser,
);

describe('validateRequest', () => {
  it('accepts a request and resolves latest', () => {
    const v = validateRequest({ runId: 'r1', target: 'latest' }, set);
    expect(v).toMatchObject({ ok: true, targetVersion: 2 });
  });

  it('resolves a version given as a string of digits', () => {
    expect(validateRequest({ runId: 'r1', target: '1' }, set)).toMatchObject({ ok: true, targetVersion: 1 });
  });

  it('rejects an unknown version, keeping the runId for the rejected event', () => {
    const v = validateRequest({ runId: 'r1', target: 7 }, set);
    expect(v).toMatchObject({ ok: false, runId: 'r1' });
    expect(!v.ok && v.reasons[0]).toMatch(/target 7/);
  });

  it('refuses a rollback that would trust or audit the fleet state', () => {
    for (const extra of [{ trust: 'fleet-state' }, { audit: 'verify', dryRun: true }]) {
      const v = validateRequest({ runId: 'r2', rollback: { runId: 'r1' }, ...extra }, set);
      expect(v).toMatchObject({ ok: false, runId: 'r2' });
      expect(!v.ok && v.reasons[0]).toMatch(/rollback reads every tenant's journal/);
    }
    expect(validateRequest({ runId: 'r2', rollback: { runId: 'r1' } }, set)).toMatchObject({
      ok: true,
      targetVersion: 0,
    });
  });

  it('names the bad fields, and drops an unusable runId', () => {
    const v = validateRequest({ runId: 'no spaces allowed', target: 'newest', extra: 1 }, set);
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.runId).toBeUndefined();
    expect(v.reasons.join('\n')).toMatch(/runId/);
    expect(v.reasons.join('\n')).toMatch(/target/);
  });

  it('caps the number of reasons for huge malformed payloads', () => {
    const v = validateRequest(
      { runId: 'r', target: 'latest', tenants: { ids: Array.from({ length: 500 }, () => 5) } },
      set,
    );
    expect(!v.ok && v.reasons.length).toBeLessThanOrEqual(20);
  });

  it('rejects values that are not objects', () => {
    for (const raw of [null, 42, 'x', [1, 2]]) expect(validateRequest(raw, set).ok).toBe(false);
  });
});

describe('requestFingerprint', () => {
  it('is the same for the same ask and differs when the ask differs', () => {
    const a = validateRequest({ runId: 'r', target: 'latest' }, set);
    const b = validateRequest({ runId: 'r', target: 2 }, set);
    const c = validateRequest({ runId: 'r', target: 'latest', dryRun: true }, set);
    if (!a.ok || !b.ok || !c.ok) throw new Error('valid requests expected');
    expect(requestFingerprint(a.request, a.targetVersion)).toBe(requestFingerprint(b.request, b.targetVersion));
    expect(requestFingerprint(a.request, a.targetVersion)).not.toBe(requestFingerprint(c.request, c.targetVersion));
  });
});
