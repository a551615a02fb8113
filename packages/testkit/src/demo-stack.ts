import pg from 'pg';

import { startEmbeddedPostgres } from './embedded-postgres.js';
import { startNatsServer } from './nats-server.js';
import { waitForPort } from './ports.js';

/** How the demo finds PostgreSQL for its first host (`SLUICE_DEMO_POSTGRES`). */
export type DemoPostgresMode = 'auto' | 'local' | 'embedded';

export interface DemoSettings {
  /** Tenant databases over both hosts (`SLUICE_DEMO_TENANTS`, default 100). */
  tenants: number;
  /** `auto`: PG* settings when a server answers there, else embedded; `local`: PG* or fail; `embedded`: never PG*. */
  postgres: DemoPostgresMode;
  /** NATS to use instead of starting nats-server (`NATS_URL`). */
  natsUrl: string | undefined;
  /** `postgres://user@host:port` from PGUSER/PGHOST/PGPORT (defaults postgres@127.0.0.1:5432). */
  pgServerUrl: string;
}

/** The demo's settings from the environment; a bad value fails naming the variable. */
export function demoSettings(env: NodeJS.ProcessEnv): DemoSettings {
  const tenants = Number(env.SLUICE_DEMO_TENANTS ?? 100);
  if (!Number.isInteger(tenants) || tenants < 2 || tenants > 10_000) {
    throw new Error(
      `SLUICE_DEMO_TENANTS must be a whole number from 2 to 10000 (tenants over two hosts), got "${env.SLUICE_DEMO_TENANTS}"`,
    );
  }
  const postgres = (env.SLUICE_DEMO_POSTGRES ?? 'auto') as DemoPostgresMode;
  if (!['auto', 'local', 'embedded'].includes(postgres))
    throw new Error(`SLUICE_DEMO_POSTGRES must be auto, local or embedded, got "${postgres}"`);
  const host = env.PGHOST ?? '127.0.0.1';
  const pgServerUrl = `postgres://${encodeURIComponent(env.PGUSER ?? 'postgres')}@${host.startsWith('/') ? 'localhost' : host}:${env.PGPORT ?? '5432'}`;
  return { tenants, postgres, natsUrl: env.NATS_URL || undefined, pgServerUrl };
}

/** Something the demo started, so that it can say what it stops and a test can check. */
export interface Started {
  label: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** NATS at `NATS_URL` (checked), or a private nats-server from PATH. */
export async function demoNats(settings: DemoSettings): Promise<{ url: string; started?: Started }> {
  if (settings.natsUrl) {
    const { hostname, port } = new URL(settings.natsUrl.split(',')[0]!);
    await waitForPort(Number(port || 4222), 3_000, hostname).catch(() => {
      throw new Error(
        `NATS_URL=${settings.natsUrl} does not answer: start NATS (with JetStream) there, or unset NATS_URL to let the demo start nats-server`,
      );
    });
    return { url: settings.natsUrl };
  }
  const nats = await startNatsServer().catch((error: Error) => {
    throw new Error(
      `NATS_URL is not set and nats-server could not be started from PATH (${error.message}); install nats-server (https://github.com/nats-io/nats-server/releases) or set NATS_URL`,
    );
  });
  return { url: nats.url, started: { label: 'nats-server', pid: nats.pid, stop: () => nats.dispose() } };
}

/**
 * Drops databases `concurrency` at a time: on a server with fsync on, each DROP DATABASE waits
 * for a checkpoint, and concurrent drops share them (one at a time took ~1 s each on a busy CI
 * machine).
 */
export async function dropDatabases(serverUrl: string, names: readonly string[], concurrency = 8): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
    await client.connect();
    try {
      while (next < names.length) await client.query(`DROP DATABASE IF EXISTS "${names[next++]!}" WITH (FORCE)`);
    } finally {
      await client.end();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, names.length) }, worker));
}

/** Tries the PG* server; resolves with why it cannot be used, or undefined when it can. */
async function probePostgres(serverUrl: string): Promise<string | undefined> {
  const probe = new pg.Client({ connectionString: `${serverUrl}/postgres`, connectionTimeoutMillis: 3_000 });
  try {
    await probe.connect();
    await probe.query('SELECT 1');
    return undefined;
  } catch (error) {
    const e = error as Error & { code?: string };
    return e.message || e.code || String(error);
  } finally {
    await probe.end().catch(() => undefined);
  }
}

export interface DemoHost {
  /** `postgres://user@host:port`, no database. */
  serverUrl: string;
  /** The demo started this cluster (and removes it); false for the PG* server. */
  embedded: boolean;
  started?: Started;
}

async function embeddedHost(label: string): Promise<DemoHost> {
  const server = await startEmbeddedPostgres();
  return {
    serverUrl: server.serverUrl,
    embedded: true,
    started: { label, pid: server.pid, stop: () => server.dispose() },
  };
}

/**
 * The demo's two database hosts. The first is the server at the PG* settings when one answers
 * (or an embedded one, per {@link DemoPostgresMode}); the second is always an embedded cluster,
 * so two hosts work on a machine with nothing but the npm packages. `note` tells what was chosen.
 */
export async function demoHosts(
  settings: DemoSettings,
  note: (line: string) => void,
  onStarted: (s: Started) => void,
): Promise<[DemoHost, DemoHost]> {
  const embedded = async (label: string): Promise<DemoHost> => {
    const host = await embeddedHost(label).catch((error: Error) => {
      throw new Error(
        `${label} could not start (${error.message})${settings.postgres === 'embedded' ? '' : `; or make PostgreSQL reachable at the PG* settings (now ${settings.pgServerUrl})`}`,
      );
    });
    onStarted(host.started!);
    note(`${label}: embedded PostgreSQL at ${host.serverUrl}`);
    return host;
  };
  const firstHost = async (): Promise<DemoHost> => {
    if (settings.postgres !== 'embedded') {
      const why = await probePostgres(settings.pgServerUrl);
      if (why === undefined) {
        note(`host 1: PostgreSQL at ${settings.pgServerUrl} (PGHOST/PGPORT/PGUSER)`);
        return { serverUrl: settings.pgServerUrl, embedded: false };
      }
      if (settings.postgres === 'local') {
        throw new Error(
          `SLUICE_DEMO_POSTGRES=local, but PostgreSQL at ${settings.pgServerUrl} (PGHOST/PGPORT/PGUSER/PGPASSWORD) cannot be used: ${why}`,
        );
      }
      note(`no usable PostgreSQL at ${settings.pgServerUrl} (${why}); starting an embedded one instead`);
    }
    return embedded('host 1');
  };
  // Both at once (initdb is most of a cluster's start); whatever started is already registered
  // for clean-up when the other fails.
  const [first, second] = await Promise.allSettled([firstHost(), embedded('host 2')]);
  if (first.status === 'rejected') throw first.reason as Error;
  if (second.status === 'rejected') throw second.reason as Error;
  return [first.value, second.value];
}
