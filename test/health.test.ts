import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { STREAMS } from '@sluice/contracts';
import {
  MIGRATIONS_DIR,
  type NatsServerHandle,
  type ServiceProcess,
  startNatsServer,
  startService,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Every service answers `/healthz` (alive) and `/readyz` (connected, streams present, replay done)
 * on its HTTP port: the planner's and executor's metrics port, the reporter's API port.
 */
describe('health endpoints of the three services', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let dir: string;
  const services: Array<{ process: ServiceProcess; port: number }> = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-health-'));
    const registry = path.join(dir, 'tenants.json');
    await writeFile(registry, '[]');
    const env = {
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: registry,
    };
    for (const name of ['reporter', 'planner', 'executor'] as const) {
      const process = await startService(name, env);
      const ready = await process.waitForLog((l) => l.msg === `${name} ready`);
      services.push({ process, port: Number(ready.httpPort ?? ready.metricsPort) });
    }
  });
  afterAll(async () => {
    for (const s of services) await s.process.stop();
    await nc?.close();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = async (port: number, route: string) => {
    const res = await fetch(`http://127.0.0.1:${port}${route}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers /healthz and /readyz without a token, with each readiness check', async () => {
    for (const { process, port } of services) {
      expect(await get(port, '/healthz'), process.name).toEqual({ status: 200, body: { status: 'ok' } });
      expect(await get(port, '/readyz'), process.name).toEqual({
        status: 200,
        body: { status: 'ready', checks: { connected: true, topology: true, replayed: true } },
      });
    }
  });

  it('is not ready (503, naming the check) when a stream is gone, and stays alive', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(STREAMS.outcomes.name);
    for (const { process, port } of services) {
      expect(await get(port, '/readyz'), process.name).toEqual({
        status: 503,
        body: { status: 'not ready', checks: { connected: true, topology: false, replayed: true } },
      });
      expect((await get(port, '/healthz')).status, process.name).toBe(200);
    }
  });
});
