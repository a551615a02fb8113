// Runs the end-to-end lanes (see vitest.config.ts): `faults` and `services` side by side, then
// `alone`. Extra arguments go to every vitest. Exits non-zero when any lane fails.
import { spawn } from 'node:child_process';
import process from 'node:process';

const extra = process.argv.slice(2);

function lane(project: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('vitest', ['run', '--project', project, '--passWithNoTests', ...extra], {
      stdio: 'inherit',
      shell: false,
    });
    child.on('error', (error) => {
      console.error(`lane ${project}: ${error.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const started = Date.now();
const side = await Promise.all([lane('faults'), lane('services')]);
const last = await lane('alone');
const failed = [...side, last].some((code) => code !== 0);
console.log(`e2e lanes: ${failed ? 'FAILED' : 'passed'} in ${Math.round((Date.now() - started) / 1000)} s`);
process.exit(failed ? 1 : 0);
