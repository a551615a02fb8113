import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { jetstream } from '@nats-io/jetstream';
import { Objm } from '@nats-io/obj';
import { encodeBundle } from '@sluice/bus';
import { BUCKETS } from '@sluice/contracts';
import { createMigrationSet, type MigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import {
  listOutcomes,
  MIGRATIONS_DIR,
  startService,
  type TenantFleet,
  waitForCompleted,
  withFleetStack,
} from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const parser = await loadSqlParser();

async function readSet(dir: string): Promise<MigrationSet> {
  const names = (await readdir(dir)).filter((n) => n.endsWith('.sql'));
  return createMigrationSet(
    await Promise.all(names.map(async (file) => ({ file, sql: await readFile(path.join(dir, file), 'utf8') }))),
    parser,
  );
}

describe('migration bundles: executors apply the planned set, and refuse an altered one', () => {
  let planned: MigrationSet;
  let otherLocalDir: string;
  const stack = withFleetStack(
    { beforeAll, afterAll },
    {
      fleets: [
        { count: 3, prefix: 'sluice_sec_bgood', tenantPrefix: 'good' },
        { count: 3, prefix: 'sluice_sec_bvict', tenantPrefix: 'victim' },
      ],
      // The executor's own folder differs from the planner's: three files, one of them edited.
      services: async ({ dir }) => {
        planned = await readSet(MIGRATIONS_DIR);
        otherLocalDir = path.join(dir, 'executor-migrations');
        await mkdir(otherLocalDir);
        for (const m of planned.migrations.slice(0, 3))
          await copyFile(path.join(MIGRATIONS_DIR, m.file), path.join(otherLocalDir, m.file));
        const second = planned.migrations[1]!;
        await writeFile(path.join(otherLocalDir, second.file), `${second.sql}\n-- edited on this executor only\n`);
        return [
          'reporter',
          { name: 'executor', env: { SLUICE_MIGRATIONS_DIR: otherLocalDir, SLUICE_EXECUTOR_ID: 'exec-local-differs' } },
          'planner',
        ];
      },
    },
  );
  const good = (): TenantFleet => stack.fleets[0]!;
  const victims = (): TenantFleet => stack.fleets[1]!;

  const request = async (payload: unknown): Promise<void> => {
    await stack.publishRequest(payload);
  };

  it('the planner stores its set under its digest', async () => {
    const local = await readSet(otherLocalDir);
    expect(local.digest).not.toBe(planned.digest);
    const planner = stack.services.find((s) => s.name === 'planner')!;
    const ready = await planner.waitForLog((l) => l.msg === 'planner ready');
    expect(ready).toMatchObject({ digest: planned.digest, bundle: 'stored' });
    const info = await (await new Objm(jetstream(stack.nc)).open(BUCKETS.bundles)).info(planned.digest);
    expect(info?.size).toBeGreaterThan(0);
  });

  it("an executor whose local folder differs applies exactly the planner's set", async () => {
    await request({ runId: 'bundle-good', target: 'latest', tenants: { ids: good().tenants.map((t) => t.tenantId) } });
    const completed = await waitForCompleted(stack.nc, 'bundle-good');
    expect(completed).toMatchObject({
      status: 'succeeded',
      targetVersion: planned.latest,
      counts: { total: 3, migrated: 3, failed: 0 },
    });
    const journals = await good().eachTenant(
      async (client) =>
        (
          await client.query<{ version: string; checksum: string; executor_id: string }>(
            'SELECT version::text, checksum, executor_id FROM sluice_migrations ORDER BY version',
          )
        ).rows,
    );
    expect(journals).toHaveLength(3);
    for (const rows of journals) {
      expect(rows.map((r) => [Number(r.version), r.checksum])).toEqual(
        planned.migrations.map((m) => [m.version, m.checksum]),
      );
      expect(rows.every((r) => r.executor_id === 'exec-local-differs')).toBe(true);
    }
    const executor = stack.services.find((s) => s.name === 'executor')!;
    expect(executor.logs.filter((l) => l.msg === 'migration set loaded from bundle')).toHaveLength(1);
  });

  it('a bundle altered in the store is refused: every tenant fails bundle_digest_mismatch at once and nothing is applied', async () => {
    // A fresh executor (nothing cached), with no local folder at all.
    const first = stack.services.find((s) => s.name === 'executor')!;
    await first.stop();
    stack.services.splice(stack.services.indexOf(first), 1);

    const altered = createMigrationSet(
      planned.migrations.map((m) => ({
        file: m.file,
        sql: m.version === 1 ? `${m.sql}\nCREATE TABLE backdoor (secret text);\n` : m.sql,
      })),
      parser,
    );
    const os = await new Objm(jetstream(stack.nc)).open(BUCKETS.bundles);
    await os.putBlob({ name: planned.digest }, encodeBundle(altered));

    const { SLUICE_MIGRATIONS_DIR: _unused, ...withoutLocalDir } = stack.env;
    stack.services.push(await startService('executor', { ...withoutLocalDir, SLUICE_EXECUTOR_ID: 'exec-no-local' }));

    await request({
      runId: 'bundle-tampered',
      target: 'latest',
      tenants: { ids: victims().tenants.map((t) => t.tenantId) },
    });
    const completed = await waitForCompleted(stack.nc, 'bundle-tampered');
    expect(completed).toMatchObject({ status: 'failed', counts: { total: 3, migrated: 0, failed: 3 } });
    expect(completed.failures).toHaveLength(3);
    for (const f of completed.failures) {
      expect(f.code).toBe('bundle_digest_mismatch');
      expect(f.error).toContain(planned.digest);
      expect(f.error).toContain(altered.digest);
    }
    const outcomes = await listOutcomes(stack.nc, 'bundle-tampered');
    expect(outcomes).toHaveLength(3);
    // Permanent: refused on the first delivery, not retried.
    for (const o of outcomes)
      expect(o).toMatchObject({
        status: 'failed',
        attempts: 1,
        executorId: 'exec-no-local',
        applied: [],
        error: { code: 'bundle_digest_mismatch', transient: false },
      });
    const tables = await victims().eachTenant(
      async (client) =>
        (
          await client.query<{ t: string }>(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public'",
          )
        ).rows,
    );
    expect(tables).toHaveLength(3);
    for (const t of tables) expect(t).toEqual([]);
  });
});
