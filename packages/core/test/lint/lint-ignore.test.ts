import { describe, expect, it } from 'vitest';

import { lintChange, rulesOf } from './lint-support.js';

const DROP = 'ALTER TABLE users DROP COLUMN name;';

describe('-- sluice:lint-ignore RULE reason', () => {
  it('silences the rule for the statement right below it, and keeps the reason', () => {
    const findings = lintChange(
      `-- sluice:lock-timeout 2s\n-- sluice:lint-ignore drop-column unused since release 42\n${DROP}\n${DROP.replace('name', 'email')}`,
    );
    expect(findings.map((f) => [f.rule, f.line, f.ignored])).toEqual([
      ['drop-column', 3, 'unused since release 42'],
      ['drop-column', 4, undefined],
    ]);
  });

  it('silences only the rule it names', () => {
    const findings = lintChange(`-- sluice:lint-ignore rename-column wrong rule\n${DROP}`);
    expect(rulesOf(findings)).toEqual(['drop-column', 'missing-lock-timeout']);
  });

  it('does not reach over a blank line', () => {
    expect(rulesOf(lintChange(`-- sluice:lint-ignore drop-column unused\n\n${DROP}`))).toContain('drop-column');
  });

  it('is an error without a reason or with an unknown rule', () => {
    const noReason = lintChange(`-- sluice:lock-timeout 2s\nSELECT 1;\n-- sluice:lint-ignore drop-column\n${DROP}`);
    expect(noReason.map((f) => [f.rule, f.severity, f.message])).toEqual([
      ['invalid-lint-ignore', 'error', 'sluice:lint-ignore drop-column gives no reason'],
      ['drop-column', 'error', 'DROP COLUMN users.name'],
    ]);
    const unknown = lintChange(`SELECT 1;\n-- sluice:lint-ignore drop-colum typo\n${DROP}`);
    expect(unknown[0]).toMatchObject({
      rule: 'invalid-lint-ignore',
      message: 'sluice:lint-ignore: unknown rule drop-colum',
    });
  });
});

describe('-- sluice:lint-ignore-file RULE reason', () => {
  it('at the top of the file silences the rule for every statement of the file', () => {
    const findings = lintChange(
      `-- sluice:lint-ignore-file drop-column both columns unused since release 42\n-- sluice:lock-timeout 2s\n${DROP}\n${DROP.replace('name', 'email')}`,
    );
    expect(findings.map((f) => [f.rule, f.ignored])).toEqual([
      ['drop-column', 'both columns unused since release 42'],
      ['drop-column', 'both columns unused since release 42'],
    ]);
  });

  it('is an error without a reason, on its own line', () => {
    const findings = lintChange(`-- sluice:lock-timeout 2s\n-- sluice:lint-ignore-file drop-column\n${DROP}`);
    expect(findings[0]).toMatchObject({ rule: 'invalid-lint-ignore', line: 2, column: 1 });
  });
});
