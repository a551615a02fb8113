import { readFile } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { cliVersion, COMMANDS, runCli } from '../src/cli.js';
import { usageOf } from '../src/command-spec.js';
import type { Output } from '../src/output.js';

/** Runs the CLI in-process and keeps what it printed. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const output: Output = { out: (l) => out.push(l), err: (l) => err.push(l), isTTY: false };
  // NATS_URL names a closed port, so a command that got as far as connecting fails fast.
  const code = await runCli(argv, { NATS_URL: 'nats://127.0.0.1:1' }, output);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('help is generated from the flag definitions', () => {
  it.each(COMMANDS.map(([spec]) => [spec.name, spec] as const))(
    '%s --help lists every flag it parses',
    async (name, spec) => {
      const { code, out } = await cli(name, '--help');
      expect(code).toBe(0);
      expect(out).toBe(usageOf(spec));
      for (const [flag, def] of Object.entries(spec.flags)) {
        expect(out).toContain(`--${flag}`);
        if (def.short) expect(out).toContain(`-${def.short}, --${flag}`);
      }
    },
  );

  it('migrate --help names --requested-by, and -s/--server', async () => {
    const { out } = await cli('migrate', '--help');
    expect(out).toMatch(/--requested-by NAME/);
    expect(out).toMatch(/-s, --server URL/);
  });

  it.each([
    ['repair', '--canary', ['--canary', '3']],
    ['baseline', '--applied', ['--applied']],
    ['baseline', '--server', ['--server', 'nats://x:4222']],
    ['migrate', '--tenant', ['--tenant', 'acme']],
    ['status', '--failed', ['run-1', '--failed']],
  ] as Array<[string, string, string[]]>)('%s refuses a flag it does not document (%s)', async (name, flag, args) => {
    const { code, err } = await cli(name, ...args);
    expect(code).toBe(2);
    expect(err).toContain(`Unknown option '${flag}'`);
    expect(err).toContain('Options:');
  });

  it('sluice --help lists every command with its summary', async () => {
    const { code, out } = await cli('--help');
    expect(code).toBe(0);
    for (const [spec] of COMMANDS) expect(out).toContain(`${spec.name} ${spec.args}`.trim());
  });
});

describe('sluice --version', () => {
  it("prints the CLI package's version", async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(cliVersion()).toBe(pkg.version);
    const { code, out } = await cli('--version');
    expect(code).toBe(0);
    expect(out).toBe(`sluice ${pkg.version}`);
  });
});

describe('durations need a unit', () => {
  it('migrate --timeout 30 is refused with the fix', async () => {
    const { code, err } = await cli('migrate', '--wait', '--timeout', '30');
    expect(code).toBe(2);
    expect(err).toContain('--timeout takes a duration with a unit: "30" has no unit: write 30s for seconds or 30ms');
  });

  it('a bare-number duration setting stops the command, naming the variable and the fix', async () => {
    const out: string[] = [];
    const code = await runCli(
      ['baseline', '--version', '1', '--database-url', 'postgres://127.0.0.1:1/x'],
      { SLUICE_CONNECT_TIMEOUT: '10' },
      { out: (l) => out.push(l), err: (l) => out.push(l), isTTY: false },
    );
    expect(code).toBe(2);
    expect(out.join('\n')).toContain(
      'SLUICE_CONNECT_TIMEOUT must be a duration with a unit: "10" has no unit: write 10s',
    );
  });
});

describe('-s/--server', () => {
  it('takes the NATS server over NATS_URL', async () => {
    const { code, err } = await cli('status', 'run-1', '-s', 'nats://127.0.0.1:2');
    expect(code).toBe(5);
    expect(err).toContain('127.0.0.1:2');
    expect(err).not.toContain('127.0.0.1:1 ');
  });
});
