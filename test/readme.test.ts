import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

import {
  freePort,
  type NatsServerHandle,
  REPO_ROOT,
  type ServiceProcess,
  startNatsServer,
  startService,
  testApiToken,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { envReadByDemo, envReadByProduct, readByLibrary } from './env-vars-in-code.js';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages/cli/dist/main.js');
let readme: string;

beforeAll(async () => {
  readme = await readFile(path.join(REPO_ROOT, 'README.md'), 'utf8');
});

/** The text of a `## Title` section, up to the next `## `. */
function section(title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`);
  if (start < 0) throw new Error(`README has no "## ${title}" section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** Lines of every ```sh block. */
function shellLines(): string[] {
  return [...readme.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter(Boolean);
}

/** Splits a command line the way sh would for these examples: spaces, '…' and "…" quoting. */
function argv(line: string): string[] {
  return [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

describe('README configuration reference', () => {
  it('lists every variable the services and the CLI read, and only those (or ones their drivers read)', async () => {
    const table = section('Configuration')
      .split('\n')
      .filter((l) => l.startsWith('| `'));
    const documented = new Set(
      table.flatMap((row) => [...row.split('|')[1]!.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!)),
    );
    const inCode = await envReadByProduct();
    const undocumented = [...inCode.keys()].filter((v) => !documented.has(v));
    expect(
      undocumented,
      `read in code but not in the README's configuration table: ${undocumented.map((v) => `${v} (${inCode.get(v)!.join(', ')})`).join('; ')}`,
    ).toEqual([]);
    const stale = [...documented].filter((v) => !inCode.has(v) && !readByLibrary(v));
    expect(stale, 'in the README table but read nowhere').toEqual([]);
  });

  it('names the demo settings the demo reads', async () => {
    const quickStart = section('Quick start');
    for (const variable of (await envReadByDemo()).keys()) {
      if (variable.startsWith('PG') || variable === 'NATS_URL') continue;
      expect(quickStart, `the demo reads ${variable}`).toContain(`\`${variable}`);
    }
  });
});

describe('README sluice command lines', () => {
  it('documents exactly the commands `sluice --help` lists', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--help']);
    const fromHelp = new Set([...stdout.matchAll(/^ {2}sluice (\S+)/gm)].map((m) => m[1]!));
    const synopsis = section('The CLI').match(/```\n([\s\S]*?)```/)![1]!;
    const fromReadme = new Set([...synopsis.matchAll(/^sluice (\S+)/gm)].flatMap((m) => m[1]!.split('|')));
    expect([...fromReadme].sort()).toEqual([...fromHelp].sort());
  });

  it('every example parses with the CLI (it gets as far as connecting; a bad flag would exit 2)', async () => {
    // The README writes `npx sluice …` (the workspace bin); what follows `sluice` is what the CLI parses.
    const lines = shellLines()
      .filter((l) => /^(npx )?sluice /.test(l))
      .filter((l) => !/^(npx )?sluice --version$/.test(l));
    expect(lines.length).toBeGreaterThanOrEqual(8);
    // Nothing listens there: a command that parsed fails to connect (exit 5), one that did not parse exits 2.
    const port = await freePort();
    const env = {
      PATH: process.env.PATH,
      NATS_URL: `nats://127.0.0.1:${port}`,
      NATS_CONNECT_TIMEOUT: '300ms',
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: path.join(REPO_ROOT, 'no-such-registry.json'),
      SLUICE_MIGRATIONS_DIR: path.join(REPO_ROOT, 'migrations'),
      PGHOST: '127.0.0.1',
      PGPORT: String(port),
      SLUICE_CONNECT_TIMEOUT: '300ms',
    };
    const results = await Promise.all(
      lines.map(async (line) => {
        const args = argv(line).slice(line.startsWith('npx ') ? 2 : 1);
        const result = await run(process.execPath, [CLI, ...args], { env, timeout: 20_000 }).then(
          () => ({ code: 0, stderr: '' }),
          (error: { code?: number; stderr?: string }) => ({ code: error.code ?? -1, stderr: error.stderr ?? '' }),
        );
        return { line, ...result };
      }),
    );
    for (const { line, code, stderr } of results) {
      expect(code, `${line}\n${stderr}`).not.toBe(2);
      expect(code, `${line}\n${stderr}`).toBe(5);
      expect(stderr).not.toMatch(/unknown option|ERR_PARSE_ARGS|Unexpected argument/i);
    }
  });
});

describe('README curl examples against a running reporter', () => {
  let nats: NatsServerHandle;
  let reporter: ServiceProcess;
  let base: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    reporter = await startService('reporter', { NATS_URL: nats.url, SLUICE_REPORTER_PORT: '0', LOG_LEVEL: 'info' });
    const ready = await reporter.waitForLog((l) => l.msg === 'reporter ready');
    base = `http://127.0.0.1:${String(ready.httpPort)}`;
  });
  afterAll(async () => {
    await reporter?.stop();
    await nats?.dispose();
  });

  it('every route the README calls exists (an unknown run is a 404 "no run", never "no route" or 405)', async () => {
    const calls = shellLines().filter((l) => l.startsWith('curl '));
    expect(calls.length).toBeGreaterThanOrEqual(6);
    const seen: string[] = [];
    for (const call of calls) {
      const args = argv(call);
      const url = args.find((a) => a.startsWith('http://localhost:8080'))!;
      const method = args.includes('-X') ? args[args.indexOf('-X') + 1]! : args.includes('-d') ? 'POST' : 'GET';
      const body = args.includes('-d') ? args[args.indexOf('-d') + 1] : undefined;
      // -H headers as written, with the README's $SLUICE_API_TOKEN standing for the test token.
      const headers = Object.fromEntries(
        args
          .flatMap((a, i) => (a === '-H' ? [args[i + 1]!] : []))
          .map((h) => h.replace('$SLUICE_API_TOKEN', testApiToken()).split(/:\s*/, 2) as [string, string]),
      );
      // A call the README makes to a route that needs a token must show the token.
      const open = ['/healthz', '/readyz', '/metrics'].includes(new URL(url).pathname);
      if (!open) expect(headers.Authorization, call).toBe(`Bearer ${testApiToken()}`);
      if (method === 'POST') expect(headers['Content-Type'], call).toBe('application/json');
      const response = await fetch(url.replace('http://localhost:8080', base), {
        method,
        headers,
        ...(body ? { body } : {}),
      });
      const text = await response.text();
      expect(response.status, `${call}: ${text}`).not.toBe(405);
      expect(text, call).not.toMatch(/no route/);
      if (response.status === 404) expect(text, call).toMatch(/no run /);
      else expect(response.status, `${call}: ${text}`).toBeLessThan(300);
      seen.push(`${method} ${new URL(url).pathname.replace(/\/runs\/[^/]+/, '/runs/:id')}`);
    }
    // The API table's routes are all exercised.
    expect(new Set(seen)).toEqual(
      new Set([
        'GET /healthz',
        'GET /readyz',
        'GET /runs',
        'GET /runs/:id',
        'GET /runs/:id/tenants',
        'POST /runs',
        'POST /runs/:id/pause',
        'POST /runs/:id/cancel',
        'GET /fleet',
        'GET /fleet/tenants',
        'GET /metrics',
      ]),
    );
  });
});
