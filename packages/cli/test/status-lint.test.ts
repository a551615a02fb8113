import { describe, expect, it } from 'vitest';

import { formatLint } from '../src/commands/status.js';

describe('sluice status: the lint report of a run', () => {
  it('prints the counts, then each finding with its place, and the reason of an ignored one', () => {
    expect(
      formatLint({
        mode: 'warn',
        errors: 1,
        warnings: 0,
        ignored: 1,
        truncated: false,
        findings: [
          {
            rule: 'index-without-concurrently',
            severity: 'error',
            file: '0007_orders_by_status.sql',
            line: 3,
            column: 1,
            message: 'CREATE INDEX on existing table orders without CONCURRENTLY blocks its writes',
          },
          {
            rule: 'prefer-text',
            severity: 'warning',
            file: '0004_create_invoices.sql',
            line: 4,
            column: 1,
            message: 'invoices.currency is char(3)',
            ignored: 'ISO 4217 codes',
          },
        ],
      }),
    ).toEqual([
      '  lint      1 errors, 0 warnings, 1 ignored (lint: warn)',
      '    0007_orders_by_status.sql:3:1 error index-without-concurrently: CREATE INDEX on existing table orders without CONCURRENTLY blocks its writes',
      '    0004_create_invoices.sql:4:1 ignored prefer-text: invoices.currency is char(3) (ISO 4217 codes)',
    ]);
  });

  it('prints nothing for a run whose set had no findings', () => {
    expect(formatLint(undefined)).toEqual([]);
  });
});
