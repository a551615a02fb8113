import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { REPO_ROOT } from '@sluice/testkit';

/**
 * Variables that drivers and SDKs read themselves, so our code never names them: libpq's
 * PG* settings (pg), the AWS SDK's standard configuration, the OpenTelemetry SDK's OTEL_*
 * settings, and Node's own options.
 */
export const LIBRARY_ENV: ReadonlyArray<{ pattern: RegExp; readBy: string }> = [
  {
    pattern: /^PG(HOST|PORT|USER|PASSWORD|DATABASE|SSLMODE|CONNECT_TIMEOUT|APPNAME|PASSFILE)$/,
    readBy: 'pg (libpq settings)',
  },
  { pattern: /^AWS_[A-Z0-9_]+$/, readBy: 'the AWS SDK' },
  { pattern: /^OTEL_[A-Z0-9_]+$/, readBy: 'the OpenTelemetry SDK' },
  { pattern: /^NODE_OPTIONS$/, readBy: 'node' },
];

export const readByLibrary = (name: string): boolean => LIBRARY_ENV.some((l) => l.pattern.test(name));

/** The patterns by which code reads a variable: the config reader (`e.int('X', …)`) or `env.X`. */
const READS = [
  /\be\.(?:string|int|duration|bytes|optional|oneOf|bool|boolean|list|url)\(\s*'([A-Z][A-Z0-9_]+)'/g,
  /\benv\.([A-Z][A-Z0-9_]+)\b/g,
  /\benv\[['"]([A-Z][A-Z0-9_]+)['"]\]/g,
];

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries
    .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !/\.(test|spec)\./.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

/** Every variable named in the given files, mapped to the files that read it (relative paths). */
export async function envReadIn(files: string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const pattern of READS) {
      for (const match of text.matchAll(pattern)) {
        const rel = path.relative(REPO_ROOT, file);
        const where = found.get(match[1]!) ?? [];
        if (!where.includes(rel)) where.push(rel);
        found.set(match[1]!, where);
      }
    }
  }
  return found;
}

/**
 * Every variable the services, the CLI and the packages they use read from the environment
 * (their `src`; testkit, tests and benchmarks excluded). `USER` (the CLI's default
 * requested-by) and `PATH` are the shell's, not settings.
 */
export async function envReadByProduct(): Promise<Map<string, string[]>> {
  const roots = [
    ...(await readdir(path.join(REPO_ROOT, 'packages')))
      .filter((p) => p !== 'testkit')
      .map((p) => path.join(REPO_ROOT, 'packages', p, 'src')),
    ...(await readdir(path.join(REPO_ROOT, 'services'))).map((s) => path.join(REPO_ROOT, 'services', s, 'src')),
  ];
  const files = (await Promise.all(roots.map(sourceFiles))).flat();
  const found = await envReadIn(files);
  for (const shell of ['USER', 'PATH', 'HOME']) found.delete(shell);
  return found;
}

/** The variables the demo reads (packages/testkit/src/demo*.ts). */
export async function envReadByDemo(): Promise<Map<string, string[]>> {
  const dir = path.join(REPO_ROOT, 'packages/testkit/src');
  const files = (await readdir(dir))
    .filter((f) => f.startsWith('demo') || f === 'nats-server.ts')
    .map((f) => path.join(dir, f));
  const found = await envReadIn(files);
  for (const shell of ['USER', 'PATH', 'HOME']) found.delete(shell);
  return found;
}

/** A `process.env` property read (not assigned) in test code, by name or by string key. */
const TEST_READS = /\bprocess\.env(?:\.([A-Z][A-Z0-9_]*)(?![A-Z0-9_])|\[['"]([A-Z][A-Z0-9_]*)['"]\])(?!\s*=[^=])/g;

/**
 * Every variable the tests read from their own environment: the e2e tests (`test/`), every
 * package's and service's `test/`, testkit (which starts servers for them) and the demo's settings.
 * Variables a test assigns itself (an `OTEL_…` set before tracing starts) are not reads. `PATH` and `HOME`
 * are the shell's, passed by every runner.
 */
export async function envReadByTests(): Promise<Map<string, string[]>> {
  const roots = [
    path.join(REPO_ROOT, 'test'),
    path.join(REPO_ROOT, 'packages/testkit/src'),
    ...(await readdir(path.join(REPO_ROOT, 'packages'))).map((p) => path.join(REPO_ROOT, 'packages', p, 'test')),
    ...(await readdir(path.join(REPO_ROOT, 'services'))).map((s) => path.join(REPO_ROOT, 'services', s, 'test')),
  ];
  const files = (
    await Promise.all(
      roots.map(async (dir) => {
        const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
        return entries
          .filter((e) => e.isFile() && /\.(ts|mts|js|mjs)$/.test(e.name) && !e.parentPath.includes('node_modules'))
          .map((e) => path.join(e.parentPath, e.name));
      }),
    )
  ).flat();
  const found = new Map<string, string[]>();
  for (const file of files) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(TEST_READS)) {
      const name = (match[1] ?? match[2])!;
      const where = found.get(name) ?? [];
      const rel = path.relative(REPO_ROOT, file);
      if (!where.includes(rel)) where.push(rel);
      found.set(name, where);
    }
  }
  for (const [name, where] of await envReadByDemo()) found.set(name, where);
  for (const shell of ['PATH', 'HOME']) found.delete(shell);
  return found;
}
