import { spawn } from 'node:child_process';
import path from 'node:path';

import { REPO_ROOT } from '@sluice/testkit';
import { describe, expect, it } from 'vitest';

/**
 * CI's share of `npm run chaos`: the harness itself (test/chaos/chaos.ts) with `--quick`, three
 * seeded runs of 60 tenants (seeds 1–3: every fault kind but the Postgres stop). The harness
 * exits 1 when its checker finds any anomaly in any run (0 when none, 2 when it could not run):
 * this test passes only on 0, and its failure message is the harness's table and replay commands.
 * The full 20 runs of 200 tenants are a command (`npm run chaos`), not part of `npm test`.
 */

function runChaos(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join('test/chaos/chaos.ts'), ...args], {
      cwd: REPO_ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

describe('chaos --quick: seeded runs under random faults, checked by the independent checker', () => {
  it('--quick (3 seeded runs of 60 tenants): no anomaly', async () => {
    const { code, output } = await runChaos(['--quick', '--logs']);
    // The table and summary, whatever happened: CI's log shows the fault mix and the times.
    const table = output
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('| ') ||
          l.startsWith('chaos:') ||
          l.startsWith('[chaos] seed') ||
          l.startsWith('[chaos] sluice'),
      );
    console.log(table.join('\n'));
    expect({ code, summary: code === 0 ? 'ok' : output.slice(-6_000) }).toEqual({ code: 0, summary: 'ok' });
  }, 900_000);
});
