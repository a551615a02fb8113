import { execFile, spawnSync } from 'node:child_process';
import { chmod, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { freePort, waitForPort } from './ports.js';

const run = promisify(execFile);

export interface PostgresClusterHandle {
  port: number;
  /** `postgres://postgres@127.0.0.1:PORT` (trust auth). */
  serverUrl: string;
  dataDir: string;
  /** Fast shutdown (connections are cut); `immediate`: no checkpoint, as if the machine died. */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  /** Starts it again, optionally with other settings (`{ max_connections: '5' }`). */
  start(settings?: Record<string, string>): Promise<void>;
  /** Stops it and removes its data. */
  dispose(): Promise<void>;
}

/** Finds the PostgreSQL binaries: PG_BIN, or the newest Debian install. */
function pgBin(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const out = spawnSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1'], {
    encoding: 'utf8',
  });
  const dir = out.stdout.trim();
  if (!dir) throw new Error('no PostgreSQL binaries found (install postgresql or set PG_BIN)');
  return dir;
}

/** Postgres refuses to run as root: as root, run its tools as the `postgres` user. */
function asPostgres(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid))
    throw new Error('running as root, but there is no postgres user to run PostgreSQL as');
  return { uid, gid };
}

/**
 * Starts a private PostgreSQL cluster on a free loopback port (a second database host for
 * tests): initdb with trust auth, fsync off, its own socket directory. Stopped and removed by
 * `dispose()`; never touches the machine's own cluster.
 */
export async function startPostgresCluster(settings: Record<string, string> = {}): Promise<PostgresClusterHandle> {
  const bin = pgBin();
  const owner = asPostgres();
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-pg-'));
  const dataDir = path.join(base, 'data');
  if (owner) await chown(base, owner.uid, owner.gid);
  await chmod(base, 0o700);
  const opts = owner
    ? { uid: owner.uid, gid: owner.gid, env: { PATH: process.env.PATH ?? '' } }
    : { env: { PATH: process.env.PATH ?? '' } };
  await run(
    path.join(bin, 'initdb'),
    ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8'],
    opts,
  );
  const port = await freePort();

  const start = async (extra: Record<string, string> = {}): Promise<void> => {
    const all = {
      listen_addresses: '127.0.0.1',
      port: String(port),
      unix_socket_directories: base,
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      ...settings,
      ...extra,
    };
    const o = Object.entries(all)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(' ');
    await run(
      path.join(bin, 'pg_ctl'),
      ['-D', dataDir, '-l', path.join(base, 'log'), '-o', o, '-w', '-t', '30', 'start'],
      opts,
    );
    await waitForPort(port, 10_000);
  };
  const stop = async (mode: 'fast' | 'immediate' = 'fast'): Promise<void> => {
    await run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', mode, '-w', '-t', '30', 'stop'], opts).catch(
      () => undefined,
    );
  };
  await start();
  return {
    port,
    serverUrl: `postgres://postgres@127.0.0.1:${port}`,
    dataDir,
    stop,
    start,
    async dispose() {
      await stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
