import { readdirSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { lintMigrationSet } from '../../src/lint/lint-migration-set.js';
import { LINT_RULES } from '../../src/lint/lint-rules.js';
import { createMigrationSet } from '../../src/migration-set.js';
import { parser } from './lint-support.js';

const DIR = new URL('../../../../migrations/', import.meta.url);

describe("the repository's own migrations", () => {
  it('lint clean: every finding is silenced with a reason', () => {
    const files = readdirSync(DIR).map((file) => ({ file, sql: readFileSync(new URL(file, DIR), 'utf8') }));
    const findings = lintMigrationSet(createMigrationSet(files, parser), parser);
    expect(findings.filter((f) => f.ignored === undefined)).toEqual([]);
    for (const f of findings) expect(f.ignored!.length).toBeGreaterThan(20);
  });
});

describe('docs/lint.md', () => {
  it('documents every rule with its severity', () => {
    const doc = readFileSync(new URL('../../../../docs/lint.md', import.meta.url), 'utf8');
    for (const [name, rule] of Object.entries(LINT_RULES)) {
      expect(doc).toContain(`| \`${name}\` | ${rule.severity} |`);
    }
  });
});
