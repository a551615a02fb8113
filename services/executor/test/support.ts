import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { type Bus, connectBus, ensureTopology } from '@sluice/bus';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';

import type { TenantWork } from '../src/tenant-work.js';

export const logger = createLogger({ service: 'executor-test', level: 'silent' });

/** What a started executor service needs: a private nats-server and a folder of one migration. */
export interface ExecutorFixture {
  nats: NatsServerHandle;
  /** Holds `0001_a.sql` (`SELECT 1;`). */
  dir: string;
  /** Stops the server and removes the folder. */
  dispose(): Promise<void>;
}

/** Starts a nats-server and writes a one-migration folder under a temporary name starting with `prefix`. */
export async function startExecutorFixture(prefix: string): Promise<ExecutorFixture> {
  const nats = await startNatsServer();
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await writeFile(path.join(dir, '0001_a.sql'), 'SELECT 1;');
  return {
    nats,
    dir,
    dispose: async () => {
      await nats.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The result of a tenant's work that found the tenant already at its target: no database needed. */
export function upToDate(): ReturnType<TenantWork> {
  return Promise.resolve({
    connectMs: 0,
    report: {
      status: 'upToDate',
      applied: [],
      fromVersion: 1,
      toVersion: 1,
      timings: { journalMs: 0, executeMs: 0, serverMs: 0 },
    },
  });
}

/** A private nats-server holding Sluice's streams, and a bus connected to it. */
export interface TaskBusFixture {
  nats: NatsServerHandle;
  bus: Bus;
  /** Closes the bus and stops the server. */
  dispose(): Promise<void>;
}

/** Starts a nats-server, connects a bus named `name` and creates Sluice's streams on it. */
export async function startTaskBus(name: string): Promise<TaskBusFixture> {
  const nats = await startNatsServer();
  try {
    const bus = await connectBus({ servers: nats.url, name }, logger);
    await ensureTopology(bus.jsm);
    return {
      nats,
      bus,
      dispose: async () => {
        await bus.close();
        await nats.dispose();
      },
    };
  } catch (error) {
    await nats.dispose();
    throw error;
  }
}
