import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import {
  type ConfiguredNatsServer,
  fleetServiceEnv,
  REPO_ROOT,
  type ServiceName,
  startNatsServerWithConfig,
  startService,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');

/** Every way a secret could show up: as is, URL-encoded, base64. */
function expectAbsent(text: string, secret: string): void {
  expect(text).not.toContain(secret);
  expect(text).not.toContain(encodeURIComponent(secret));
  expect(text).not.toContain(Buffer.from(secret).toString('base64'));
}

describe('services and the CLI with wrong or missing NATS credentials', () => {
  let nats: ConfiguredNatsServer;
  let dir: string;
  let baseEnv: Record<string, string>;
  const pass = `S3cr3t-${randomBytes(12).toString('hex')}`;
  const wrong = `Wr0ng-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    nats = await startNatsServerWithConfig(`authorization { users: [ { user: sluice, password: "${pass}" } ] }\n`);
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-sec-auth-'));
    const registry = path.join(dir, 'tenants.json');
    await writeFile(registry, '[]\n');
    baseEnv = fleetServiceEnv({ natsUrl: nats.url, registryFile: registry });
  });
  afterAll(async () => {
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, Record<string, string>, RegExp]> = [
    [
      'a wrong password',
      { NATS_USER: 'sluice', NATS_PASS: wrong },
      /refused user "sluice" \(NATS_USER\/NATS_PASSWORD\)/,
    ],
    [
      'no credentials',
      {},
      /refused no credentials \(set NATS_USER\/NATS_PASSWORD, NATS_TOKEN, NATS_NKEY or NATS_CREDS\)/,
    ],
  ];

  for (const name of ['planner', 'executor', 'reporter'] as ServiceName[]) {
    for (const [what, extra, message] of cases) {
      it(`${name} stops at start with ${what}, naming the problem, never the password`, async () => {
        const started = Date.now();
        const service = await startService(name, { ...baseEnv, ...extra }, { waitReady: false });
        const code = await Promise.race([
          service.exited,
          new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 15_000)),
        ]);
        if (code === 'hung') await service.kill();
        expect(code).toBe(1);
        expect(Date.now() - started).toBeLessThan(10_000);
        const output = service.output.join('\n');
        const fatal = service.logs.find((l) => l.level === 'fatal');
        expect(fatal?.msg).toMatch(message);
        expectAbsent(output, wrong);
        expectAbsent(output, pass);
      });
    }
  }

  it('the CLI exits with the reason, never the password', async () => {
    let result: { code: number; stdout: string; stderr: string };
    try {
      await run(process.execPath, [CLI, 'runs'], {
        env: { ...baseEnv, PATH: process.env.PATH ?? '', NATS_USER: 'sluice', NATS_PASS: wrong },
        timeout: 30_000,
      });
      result = { code: 0, stdout: '', stderr: '' };
    } catch (error) {
      result = error as { code: number; stdout: string; stderr: string };
    }
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/refused user "sluice" \(NATS_USER\/NATS_PASSWORD\)/);
    expectAbsent(`${result.stdout}\n${result.stderr}`, wrong);
  });

  it('the same services start with the right password', async () => {
    const reporter = await startService('reporter', { ...baseEnv, NATS_USER: 'sluice', NATS_PASSWORD: pass });
    try {
      expectAbsent(reporter.output.join('\n'), pass);
    } finally {
      await reporter.stop();
    }
  });
});
