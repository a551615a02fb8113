import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { REQUEST_SUBJECT } from '@sluice/contracts';
import {
  MIGRATIONS_DIR,
  type NatsServerHandle,
  type OtlpReceiver,
  type ServiceProcess,
  startNatsServer,
  startOtlpReceiver,
  startService,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The services export OTLP/protobuf by default (what Jaeger ingests): the test receiver decodes
 * it, so span names and attributes are read from exactly what a collector would get.
 */
describe('traces exported as OTLP/protobuf', () => {
  let nats: NatsServerHandle;
  let nc: NatsConnection;
  let receiver: OtlpReceiver;
  let planner: ServiceProcess;
  let dir: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    receiver = await startOtlpReceiver();
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-otlp-proto-'));
    const registry = path.join(dir, 'tenants.json');
    await writeFile(
      registry,
      JSON.stringify([{ tenantId: 'proto-1', databaseUrl: 'postgres://app@db1.internal:5432/p1' }]),
    );
    planner = await startService('planner', {
      NATS_URL: nats.url,
      SLUICE_MIGRATIONS_DIR: MIGRATIONS_DIR,
      SLUICE_REGISTRY: 'file',
      SLUICE_TENANTS_FILE: registry,
      // No OTEL_EXPORTER_OTLP_PROTOCOL: the SDK's default, http/protobuf.
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
  });
  afterAll(async () => {
    await planner?.stop();
    await receiver?.close();
    await nc?.close();
    await nats?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("reads the planner's run and task spans, with their attributes, from protobuf exports", async () => {
    nc.publish(REQUEST_SUBJECT, JSON.stringify({ runId: 'proto-run', target: 'latest' }));
    await nc.flush();
    const spans = await receiver.waitFor(
      (s) =>
        s.some((x) => x.name === 'sluice.run' && x.attributes['sluice.run_id'] === 'proto-run') &&
        s.some((x) => x.name === 'sluice.task.publish'),
    );
    expect(receiver.protobuf().requests).toBeGreaterThan(0);
    expect(receiver.bodies()).toEqual([]);
    const run = spans.find((s) => s.name === 'sluice.run' && s.attributes['sluice.run_id'] === 'proto-run')!;
    expect(run).toMatchObject({
      serviceName: 'sluice-planner',
      kind: 'consumer',
      attributes: { 'sluice.run_id': 'proto-run', 'sluice.dry_run': false },
    });
    expect(run.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(run.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(run.endMs).toBeGreaterThanOrEqual(run.startMs);
    const task = spans.find((s) => s.name === 'sluice.task.publish')!;
    expect(task).toMatchObject({
      kind: 'producer',
      traceId: run.traceId,
      attributes: { 'sluice.run_id': 'proto-run', 'sluice.tenant_id': 'proto-1', 'sluice.host': 'db1.internal:5432' },
    });
    expect(typeof task.attributes['sluice.target_version']).toBe('number');
  });
});
