// Runs the end-to-end lanes (see vitest.config.ts): `faults` and `services` side by side, then
// `alone`. Extra arguments go to every vitest. Exits non-zero when any lane fails.
//
// Each lane also writes vitest's JSON report, and the last thing printed is a summary of every
// failed test with the head of its error: CI logs are often read from the tail only, and two lanes
// printing side by side bury a failure far above it.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

const extra = process.argv.slice(2);
const reports = mkdtempSync(join(tmpdir(), 'sluice-lanes-'));

interface JsonReport {
  testResults?: {
    name: string;
    status: string;
    message?: string;
    assertionResults?: { fullName: string; status: string; failureMessages?: string[] }[];
  }[];
}

function lane(project: string): Promise<number> {
  const reportFile = join(reports, `${project}.json`);
  return new Promise((resolve) => {
    const child = spawn(
      'vitest',
      [
        'run',
        '--project',
        project,
        '--passWithNoTests',
        '--reporter=default',
        '--reporter=json',
        `--outputFile.json=${reportFile}`,
        ...extra,
      ],
      { stdio: 'inherit', shell: false },
    );
    child.on('error', (error) => {
      console.error(`lane ${project}: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

function failures(project: string): string[] {
  let report: JsonReport;
  try {
    report = JSON.parse(readFileSync(join(reports, `${project}.json`), 'utf8')) as JsonReport;
  } catch {
    return [`  (lane ${project} wrote no report: it did not finish)`];
  }
  const lines: string[] = [];
  for (const file of report.testResults ?? []) {
    const name = file.name.split('/').pop();
    const failed = (file.assertionResults ?? []).filter((test) => test.status === 'failed');
    if (file.status === 'failed' && failed.length === 0) {
      lines.push(`  ${name}: ${head(file.message ?? 'failed outside a test (hook or import)')}`);
    }
    for (const test of failed) {
      lines.push(`  ${name} > ${test.fullName}`, `      ${head(test.failureMessages?.[0] ?? '')}`);
    }
  }
  return lines;
}

/** The first lines of an error, without colour codes: enough to name the cause. */
function head(message: string): string {
  // eslint-disable-next-line no-control-regex
  const plain = message.replace(/\u001b\[[0-9;]*m/g, '');
  return plain.split('\n').slice(0, 6).join('\n      ');
}

const started = Date.now();
const side = await Promise.all([lane('faults'), lane('services')]);
const last = await lane('alone');
const codes = { faults: side[0], services: side[1], alone: last };
const failed = Object.values(codes).some((code) => code !== 0);
if (failed) {
  console.log('\ne2e lanes: failures');
  for (const [project, code] of Object.entries(codes)) {
    if (code === 0) continue;
    console.log(`lane ${project} exited ${code}:`);
    for (const line of failures(project)) console.log(line);
  }
}
rmSync(reports, { recursive: true, force: true });
console.log(`e2e lanes: ${failed ? 'FAILED' : 'passed'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(failed ? 1 : 0);
