/**
 * The lint benchmark (`npm run bench:lint`): what PostgreSQL's parser costs Sluice.
 *   - parser load: importing libpg-query and compiling its WebAssembly, once per process;
 *   - set load: createMigrationSet over a generated 200-file set (every file parsed, checked);
 *   - lint: lintMigrationSet over the same set (parsed again, every rule run).
 * The first pass is cold (JIT warming up); the median of the next passes is what a planner pays
 * for each new set digest. Target: lint of 200 files in under 1 s.
 */
import { parseArgs } from 'node:util';

import { countFindings, createMigrationSet, lintMigrationSet, type MigrationSource } from '@sluice/core';

const { values } = parseArgs({
  options: { files: { type: 'string', default: '200' }, passes: { type: 'string', default: '7' } },
});
const FILES = Number(values.files);
const PASSES = Number(values.passes);

/** Realistic migrations, cycling through the kinds a product's history holds. */
function generate(count: number): MigrationSource[] {
  const files: MigrationSource[] = [];
  for (let i = 1; i <= count; i += 1) {
    const v = String(i).padStart(4, '0');
    const t = `table_${i % 40}`;
    let sql: string;
    switch (i % 8) {
      case 1:
        sql = `-- A new entity.\nCREATE TABLE entity_${i} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  account_id bigint NOT NULL,\n  name text NOT NULL,\n  payload jsonb NOT NULL DEFAULT '{}',\n  created_at timestamptz NOT NULL DEFAULT now()\n);\nCREATE INDEX entity_${i}_account_idx ON entity_${i} (account_id);\n`;
        break;
      case 2:
        sql = `-- sluice:lock-timeout 2s\nALTER TABLE ${t} ADD COLUMN col_${i} text;\nALTER TABLE ${t} ALTER COLUMN col_${i} SET DEFAULT 'n/a';\n`;
        break;
      case 3:
        sql = `-- sluice:no-transaction\n-- Built concurrently: the table is busy.\nCREATE INDEX CONCURRENTLY IF NOT EXISTS ${t}_col_${i}_idx ON ${t} (col_${i - 1}) WHERE col_${i - 1} IS NOT NULL;\n`;
        break;
      case 4:
        sql = `CREATE OR REPLACE FUNCTION touch_${i}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n  NEW.updated_at := now();\n  IF NEW.name IS NULL THEN\n    NEW.name := 'unnamed; really';\n  END IF;\n  RETURN NEW;\nEND;\n$$;\n`;
        break;
      case 5:
        sql = `-- sluice:lock-timeout 2s\nALTER TABLE ${t} ADD CONSTRAINT ${t}_c${i}_fk FOREIGN KEY (account_id) REFERENCES accounts (id) NOT VALID;\n`;
        break;
      case 6:
        sql = `ALTER TABLE ${t} VALIDATE CONSTRAINT ${t}_c${i - 1}_fk;\n`;
        break;
      case 7:
        sql = `-- Seed data.\nINSERT INTO plans_${i % 5} (code, name, seats)\nSELECT 'p' || g, 'Plan ' || g, g * 5 FROM generate_series(1, 10) AS g\nON CONFLICT DO NOTHING;\nUPDATE ${t} SET col_${i - 5} = lower(col_${i - 5}) WHERE id < 1000;\n`;
        break;
      default:
        sql = `CREATE VIEW report_${i} AS\nSELECT a.id, count(*) AS n, sum(o.total) AS total\nFROM accounts a JOIN orders o ON o.account_id = a.id\nWHERE o.created_at > now() - interval '30 days'\nGROUP BY a.id;\nCOMMENT ON VIEW report_${i} IS 'monthly; per account';\n`;
    }
    files.push({ file: `${v}_change_${i}.sql`, sql });
  }
  return files;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const importStarted = performance.now();
const { loadSqlParser } = await import('@sluice/sql-parser');
const compileStarted = performance.now();
const parser = await loadSqlParser();
const importMs = compileStarted - importStarted;
const compileMs = performance.now() - compileStarted;
const loadMs = importMs + compileMs;

const sources = generate(FILES);
const bytes = sources.reduce((n, s) => n + Buffer.byteLength(s.sql), 0);
const setMs: number[] = [];
const lintMs: number[] = [];
let findings = countFindings([]);
for (let pass = 0; pass <= PASSES; pass += 1) {
  const t0 = performance.now();
  const set = createMigrationSet(sources, parser);
  const t1 = performance.now();
  const found = lintMigrationSet(set, parser);
  const t2 = performance.now();
  setMs.push(t1 - t0);
  lintMs.push(t2 - t1);
  findings = countFindings(found);
}
const fmt = (ms: number): string => `${ms.toFixed(1)} ms`;
console.log(`lint benchmark: ${FILES} files, ${(bytes / 1024).toFixed(0)} KiB, Node ${process.version}`);
console.log(
  `  parser load, once per process: import ${fmt(importMs)} + WebAssembly compile ${fmt(compileMs)} = ${fmt(loadMs)}`,
);
console.log(
  `  set load (parse + checks), cold / median of ${PASSES}            ${fmt(setMs[0]!)} / ${fmt(median(setMs.slice(1)))}`,
);
console.log(
  `  lint (parse + every rule), cold / median of ${PASSES}            ${fmt(lintMs[0]!)} / ${fmt(median(lintMs.slice(1)))}`,
);
console.log(`  findings: ${findings.errors} errors, ${findings.warnings} warnings, ${findings.ignored} ignored`);
const coldTotal = loadMs + setMs[0]! + lintMs[0]!;
console.log(`  cold total (load + set + lint)                                 ${fmt(coldTotal)}`);
