import { describe, expect, it } from 'vitest';

import { LINT_RULES } from '../../src/lint/lint-rules.js';
import { lintChange, rules, rulesOf } from './lint-support.js';

const NO_TX = '-- sluice:no-transaction\n';

/** Each rule: migrations it flags and the safe migrations that replace them (taken from real-world guides). */
const CASES: Record<string, { fails: string[]; passes: string[] }> = {
  'index-without-concurrently': {
    fails: [
      'CREATE INDEX orders_user_id_idx ON orders (user_id);',
      'CREATE UNIQUE INDEX users_email_key ON users (lower(email));',
    ],
    passes: [
      `${NO_TX}CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_user_id_idx ON orders (user_id);`,
      'CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint NOT NULL);\nCREATE INDEX invoices_order_id_idx ON invoices (order_id);',
    ],
  },
  'reindex-without-concurrently': {
    fails: ['REINDEX INDEX orders_pkey;', 'REINDEX TABLE orders;'],
    passes: [`${NO_TX}REINDEX INDEX CONCURRENTLY orders_pkey;`],
  },
  'constraint-without-not-valid': {
    fails: [
      'ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id);',
      'ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);',
      'ALTER TABLE orders ADD COLUMN coupon_user_id bigint REFERENCES users (id);',
    ],
    passes: [
      'ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;',
      'ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;',
      'ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;',
    ],
  },
  'set-not-null-without-check': {
    fails: ['ALTER TABLE users ALTER COLUMN name SET NOT NULL;'],
    passes: [
      [
        'ALTER TABLE users ADD CONSTRAINT users_name_not_null CHECK (name IS NOT NULL) NOT VALID;',
        'ALTER TABLE users VALIDATE CONSTRAINT users_name_not_null;',
        'ALTER TABLE users ALTER COLUMN name SET NOT NULL;',
        'ALTER TABLE users DROP CONSTRAINT users_name_not_null;',
      ].join('\n'),
      'CREATE TABLE tags (id bigint PRIMARY KEY, label text);\nALTER TABLE tags ALTER COLUMN label SET NOT NULL;',
    ],
  },
  'column-type-rewrite': {
    fails: [
      'ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,4);',
      'ALTER TABLE users ALTER COLUMN created_at TYPE timestamp;',
      'ALTER TABLE orders ALTER COLUMN status TYPE varchar(20);',
      'ALTER TABLE users ALTER COLUMN name TYPE varchar(50);',
      'ALTER TABLE orders ALTER COLUMN user_id TYPE text USING user_id::text;',
    ],
    passes: [
      'ALTER TABLE users ALTER COLUMN name TYPE text;',
      '-- sluice:lint-ignore prefer-text the limit is part of the API contract\nALTER TABLE users ALTER COLUMN name TYPE varchar(200);',
      'ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2);',
    ],
  },
  'add-column-volatile-default': {
    fails: [
      'ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();',
      'ALTER TABLE users ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();',
      'ALTER TABLE orders ADD COLUMN seq bigserial;',
      'ALTER TABLE orders ADD COLUMN cents bigint GENERATED ALWAYS AS (total * 100) STORED;',
    ],
    passes: [
      "ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';",
      'ALTER TABLE users ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();',
      'ALTER TABLE orders ADD COLUMN public_id uuid;\nALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();',
    ],
  },
  'unique-without-using-index': {
    fails: [
      'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);',
      'ALTER TABLE users ADD COLUMN handle text UNIQUE;',
      'CREATE TABLE t (id bigint);\nALTER TABLE orders ADD PRIMARY KEY (id);',
    ],
    passes: [
      'ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;',
      'CREATE TABLE slugs (slug text);\nALTER TABLE slugs ADD CONSTRAINT slugs_slug_key UNIQUE (slug);',
    ],
  },
  'vacuum-full': {
    fails: [`${NO_TX}VACUUM FULL orders;`, `${NO_TX}VACUUM (FULL, ANALYZE) orders;`],
    passes: [`${NO_TX}VACUUM (ANALYZE) orders;`],
  },
  cluster: {
    fails: ['CLUSTER orders USING orders_pkey;'],
    passes: ['ALTER TABLE orders SET (fillfactor = 90);'],
  },
  'lock-table': {
    fails: ['LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;\nUPDATE orders SET status = lower(status);'],
    passes: ['UPDATE orders SET status = lower(status) WHERE status <> lower(status);'],
  },
  'rename-column': {
    fails: ['ALTER TABLE users RENAME COLUMN name TO full_name;'],
    passes: [
      'ALTER TABLE users ADD COLUMN full_name text;',
      'CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;',
    ],
  },
  'rename-table': {
    fails: ['ALTER TABLE orders RENAME TO purchases;'],
    passes: ['CREATE VIEW purchases AS SELECT * FROM orders;'],
  },
  'drop-column': {
    fails: ['ALTER TABLE users DROP COLUMN name;'],
    passes: [
      '-- sluice:lint-ignore drop-column name is unused since release 2026.11 (PR #412)\nALTER TABLE users DROP COLUMN name;',
    ],
  },
  'drop-table': {
    fails: ['DROP TABLE orders;', 'DROP TABLE IF EXISTS public.orders CASCADE;'],
    passes: ['CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;'],
  },
  'unbounded-dml-in-ddl-transaction': {
    fails: [
      "ALTER TABLE orders ADD COLUMN currency text;\nUPDATE orders SET currency = 'EUR';",
      'ALTER TABLE users ADD COLUMN archived boolean;\nDELETE FROM orders;',
    ],
    passes: [
      "ALTER TABLE orders ADD COLUMN currency text;\nUPDATE orders SET currency = 'EUR' WHERE currency IS NULL AND id < 10000;",
      "UPDATE orders SET status = 'open';",
      "CREATE TABLE plans (code text PRIMARY KEY);\nINSERT INTO plans VALUES ('free');\nUPDATE plans SET code = upper(code);",
    ],
  },
  'concurrently-in-transaction': {
    fails: [
      'CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);',
      'DROP INDEX CONCURRENTLY orders_status_idx;',
      'REINDEX INDEX CONCURRENTLY orders_pkey;',
      'VACUUM orders;',
    ],
    passes: [
      `${NO_TX}CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);`,
      `${NO_TX}DROP INDEX CONCURRENTLY orders_status_idx;`,
    ],
  },
  'int-primary-key': {
    fails: [
      'CREATE TABLE events (id serial PRIMARY KEY, kind text);',
      'CREATE TABLE events (id integer, kind text, PRIMARY KEY (id));',
      'CREATE TABLE events (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY);',
    ],
    passes: [
      'CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text);',
      'CREATE TABLE events (id bigserial PRIMARY KEY);',
      'CREATE TABLE events (id uuid PRIMARY KEY DEFAULT gen_random_uuid());',
    ],
  },
  'prefer-text': {
    fails: [
      'CREATE TABLE countries (code char(2) PRIMARY KEY, name varchar(255) NOT NULL);',
      'ALTER TABLE users ADD COLUMN nickname varchar(32);',
    ],
    passes: [
      'CREATE TABLE countries (code text PRIMARY KEY CHECK (char_length(code) = 2), name text NOT NULL);',
      'ALTER TABLE users ADD COLUMN nickname varchar;',
    ],
  },
  'missing-lock-timeout': {
    fails: [
      'ALTER TABLE orders ADD COLUMN note text;',
      "SET lock_timeout = '10s';\nALTER TABLE orders ADD COLUMN note text;",
      'CREATE TABLE refunds (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id));',
      'CREATE TRIGGER orders_audit AFTER UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION audit();',
    ],
    passes: [
      '-- sluice:lock-timeout 2s\nALTER TABLE orders ADD COLUMN note text;',
      "SET LOCAL lock_timeout = '1s';\nALTER TABLE orders ADD COLUMN note text;",
      'CREATE TABLE refunds (id bigint PRIMARY KEY, amount bigint);',
      'CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;',
      `${NO_TX}CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);`,
    ],
  },
};

describe('every rule', () => {
  it('has cases here, a severity, a why and a safe alternative', () => {
    const named = Object.keys(LINT_RULES).filter((r) => r !== 'invalid-lint-ignore');
    expect(Object.keys(CASES).sort()).toEqual(named.sort());
    for (const rule of Object.values(LINT_RULES)) {
      expect(['error', 'warning']).toContain(rule.severity);
      expect(rule.why.length).toBeGreaterThan(20);
      expect(rule.instead.length).toBeGreaterThan(10);
    }
  });
});

describe.each(Object.entries(CASES))('%s', (rule, { fails, passes }) => {
  const found = (sql: string): string[] => (rule === 'missing-lock-timeout' ? rulesOf(lintChange(sql)) : rules(sql));
  it.each(fails)('flags %s', (sql) => {
    expect(found(sql)).toContain(rule);
  });
  it.each(passes)('passes %s', (sql) => {
    expect(found(sql)).not.toContain(rule);
  });
});

describe('findings', () => {
  it('name the file, the line and column of the statement, the severity and what is wrong', () => {
    const findings = lintChange(
      '-- sluice:lock-timeout 2s\n-- Speed up the order list.\n\n  CREATE INDEX orders_user_id_idx ON orders (user_id);',
    );
    expect(findings).toEqual([
      {
        rule: 'index-without-concurrently',
        severity: 'error',
        file: '0002_change.sql',
        line: 4,
        column: 3,
        message: 'CREATE INDEX on existing table orders without CONCURRENTLY blocks its writes',
      },
    ]);
  });

  it('report a missing lock timeout once per file, at the first statement that needs it', () => {
    const findings = lintChange('ALTER TABLE orders ADD COLUMN a text;\nALTER TABLE orders ADD COLUMN b text;');
    expect(findings.filter((f) => f.rule === 'missing-lock-timeout').map((f) => f.line)).toEqual([1]);
  });

  it('compare the file’s lock timeout with the session default it is given', () => {
    const sql = '-- sluice:lock-timeout 3s\nALTER TABLE orders ADD COLUMN a text;';
    expect(rulesOf(lintChange(sql))).toEqual([]);
    expect(rulesOf(lintChange(sql, { sessionLockTimeoutMs: 2_000 }))).toEqual(['missing-lock-timeout']);
  });

  it('know tables created by earlier files exist, and those created in the file do not', () => {
    expect(rules('CREATE INDEX users_email_idx ON users (email);')).toEqual(['index-without-concurrently']);
    expect(rules('CREATE TABLE t (a text);\nCREATE INDEX t_a_idx ON t (a);')).toEqual([]);
  });
});
