import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import type { RunCompletedEvent } from '@sluice/contracts';
import {
  type ConfiguredNatsServer,
  createTenantFleet,
  fleetServiceEnv,
  type OtlpReceiver,
  type PostgresClusterHandle,
  REPO_ROOT,
  type ServiceProcess,
  startNatsServerWithConfig,
  startOtlpReceiver,
  startPostgresCluster,
  startService,
  type TenantFleet,
  waitForCompleted,
} from '@sluice/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');
const OWNER = 'sluice_sec_owner';
const INTRUDER = 'sluice_sec_intruder';

/** Every form a leaked secret could take on the wire or in a log. */
function forms(secret: string): Record<string, string> {
  return {
    raw: secret,
    urlEncoded: encodeURIComponent(secret),
    base64: Buffer.from(secret).toString('base64'),
    base64url: Buffer.from(secret).toString('base64url'),
    jsonEscaped: JSON.stringify(secret).slice(1, -1),
  };
}

function findLeaks(haystacks: Array<{ where: string; text: string }>, secrets: Record<string, string>): string[] {
  const leaks: string[] = [];
  for (const [secretName, secret] of Object.entries(secrets)) {
    for (const [form, needle] of Object.entries(forms(secret))) {
      for (const h of haystacks) if (h.text.includes(needle)) leaks.push(`${secretName} (${form}) in ${h.where}`);
    }
  }
  return leaks;
}

describe('secrets: a run with a password-protected Postgres role and NATS user leaks neither password', () => {
  let cluster: PostgresClusterHandle;
  let nats: ConfiguredNatsServer;
  let fleet: TenantFleet;
  let dir: string;
  let nc: NatsConnection;
  let sub: Subscription;
  let env: Record<string, string>;
  const services: ServiceProcess[] = [];
  const captured: Array<{ where: string; text: string }> = [];
  // Characters that URL-encoding changes, so the encoded form is a different needle.
  const pgPassword = `Pg:S3c/r@t%${randomBytes(10).toString('hex')}`;
  const natsPassword = `Nats-${randomBytes(12).toString('hex')}`;
  const observerPassword = `Obs-${randomBytes(12).toString('hex')}`;
  let completed: RunCompletedEvent;
  let cliOutput = '';
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    cluster = await startPostgresCluster();
    const admin = new pg.Client({ connectionString: `${cluster.serverUrl}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${OWNER} LOGIN PASSWORD ${admin.escapeLiteral(pgPassword)}`);
      await admin.query(
        `CREATE ROLE ${INTRUDER} LOGIN PASSWORD ${admin.escapeLiteral(`other-${randomBytes(6).toString('hex')}`)}`,
      );
      // Both roles must prove a password over TCP (SCRAM); the superuser keeps trust for the test's own setup.
      const hbaFile = (await admin.query<{ hba_file: string }>('SHOW hba_file')).rows[0]!.hba_file;
      const hba = await readFile(hbaFile, 'utf8');
      await writeFile(
        hbaFile,
        `host all ${OWNER} 127.0.0.1/32 scram-sha-256\nhost all ${INTRUDER} 127.0.0.1/32 scram-sha-256\n${hba}`,
      );
      await admin.query('SELECT pg_reload_conf()');
    } finally {
      await admin.end();
    }
    fleet = await createTenantFleet({
      count: 4,
      serverUrl: cluster.serverUrl,
      prefix: 'sluice_sec_s',
      tenantPrefix: 'sec',
    });
    const owner = new pg.Client({ connectionString: `${cluster.serverUrl}/postgres` });
    await owner.connect();
    for (const t of fleet.tenants) await owner.query(`ALTER DATABASE "${t.database}" OWNER TO ${OWNER}`);
    await owner.end();

    // The services' user may touch only what docs/security.md lists; the test's observer sees everything.
    const allowed = JSON.stringify([
      'sluice.>',
      '$JS.API.>',
      '$JS.ACK.>',
      '$JS.FC.>',
      '$KV.sluice_runs.>',
      '$KV.sluice_run_control.>',
      '$KV.sluice_fleet.>',
      '$KV.sluice_fleet_index.>',
      '$O.sluice_bundles.>',
      '_INBOX.>',
    ]);
    nats = await startNatsServerWithConfig(
      `authorization { users: [\n  { user: sluice, password: "${natsPassword}", permissions: { publish: ${allowed}, subscribe: ${allowed} } }\n  { user: observer, password: "${observerPassword}" }\n] }\n`,
    );
    dir = await mkdtemp(path.join(tmpdir(), 'sluice-sec-secrets-'));
    const registry = path.join(dir, 'tenants.json');
    const ownerUrl = (db: string): string => `postgres://${OWNER}@127.0.0.1:${cluster.port}/${db}`;
    await writeFile(
      registry,
      JSON.stringify([
        ...fleet.tenants.map((t) => ({ tenantId: t.tenantId, databaseUrl: ownerUrl(t.database) })),
        // The executors hold the owner's password only: this tenant's login fails, exercising the error path.
        {
          tenantId: 'sec-intruder',
          databaseUrl: `postgres://${INTRUDER}@127.0.0.1:${cluster.port}/${fleet.tenants[0]!.database}`,
        },
      ]),
    );
    const passFile = path.join(dir, 'pgpass');
    await writeFile(
      passFile,
      `127.0.0.1:${cluster.port}:*:${OWNER}:${pgPassword.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`,
      { mode: 0o600 },
    );

    // Every message of the run, from before the first service starts: a core subscription sees all publishes.
    nc = await connect({ servers: nats.url, user: 'observer', pass: observerPassword });
    sub = nc.subscribe('>');
    void (async () => {
      for await (const m of sub) {
        const headers = m.headers
          ? [...m.headers.keys()].map((k) => `${k}: ${m.headers!.values(k).join(',')}`).join('\n')
          : '';
        captured.push({
          where: `nats ${m.subject}`,
          text: `${m.subject}\n${m.reply ?? ''}\n${headers}\n${Buffer.from(m.data).toString('utf8')}\n${Buffer.from(m.data).toString('latin1')}`,
        });
      }
    })();

    // Traces on, exported as OTLP/JSON to a local receiver: the spans are searched too.
    receiver = await startOtlpReceiver();
    env = fleetServiceEnv(
      { natsUrl: nats.url, registryFile: registry },
      {
        NATS_USER: 'sluice',
        NATS_PASSWORD: natsPassword,
        LOG_LEVEL: 'debug',
        SLUICE_MAX_ATTEMPTS: '2',
        SLUICE_RETRY_BASE: '100ms',
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_BSP_SCHEDULE_DELAY: '200',
      },
    );
    services.push(await startService('reporter', env));
    // The two ways a user hands Postgres its password: the variable, and a pgpass file.
    services.push(
      await startService('executor', { ...env, PGPASSWORD: pgPassword, SLUICE_EXECUTOR_ID: 'sec-exec-env' }),
    );
    services.push(
      await startService('executor', { ...env, PGPASSFILE: passFile, SLUICE_EXECUTOR_ID: 'sec-exec-passfile' }),
    );
    services.push(await startService('planner', env));

    // A partial run exits 1 (migrate --wait and status alike); the output is what matters here.
    const sluice = async (...args: string[]): Promise<string> => {
      try {
        const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
          env: { ...env, PATH: process.env.PATH ?? '' },
          timeout: 120_000,
        });
        return `${stdout}\n${stderr}`;
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        return `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
      }
    };
    cliOutput = await sluice('migrate', '--target', 'latest', '--run-id', 'sec-run', '--wait');
    completed = await waitForCompleted(nc, 'sec-run');
    cliOutput += `\n${await sluice('status', 'sec-run', '--json')}\n${await sluice('tenants', 'sec-run', '--failed')}`;
    // Stop the services before reading their output, so every line they wrote (and every span) is in.
    for (const s of services.splice(0)) {
      await s.stop();
      captured.push({ where: `${s.name} output`, text: s.output.join('\n') });
    }
    await nc.flush();
    for (const [i, body] of receiver.bodies().entries()) captured.push({ where: `spans export ${i + 1}`, text: body });
  });

  afterAll(async () => {
    await receiver?.close();
    sub?.unsubscribe();
    await nc?.close();
    for (const s of services) await s.stop();
    await nats?.dispose();
    await fleet?.drop().catch(() => undefined);
    await cluster?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the roles really need their password', async () => {
    const as = (password: string): pg.Client =>
      new pg.Client({ host: '127.0.0.1', port: cluster.port, user: OWNER, database: 'postgres', password });
    const denied = as('not-it');
    await expect(denied.connect()).rejects.toThrow(/password authentication failed/);
    await denied.end().catch(() => undefined);
    const allowed = as(pgPassword);
    await allowed.connect();
    await allowed.end();
  });

  it('migrates the owned fleet with the password from PGPASSWORD and from a pgpass file, and fails the intruder', async () => {
    expect(completed).toMatchObject({ status: 'partial', counts: { total: 5, migrated: 4, failed: 1 } });
    expect(completed.failures).toEqual([
      expect.objectContaining({
        tenantId: 'sec-intruder',
        error: expect.stringMatching(
          /password authentication failed for user "sluice_sec_intruder"|the server asks for a password and none was given \(set PGPASSWORD/,
        ) as unknown,
      }),
    ]);
    const versions = await fleet.eachTenant(
      async (client) =>
        (await client.query<{ n: string }>('SELECT count(*)::text AS n FROM sluice_migrations')).rows[0]!.n,
    );
    expect(versions).toEqual(['6', '6', '6', '6']);
    expect(cliOutput).toMatch(/run sec-run: PARTIAL/i);
  });

  it('what was captured is the whole run: tasks with their database URLs, outcomes, events, debug logs', () => {
    const subjects = captured.filter((c) => c.where.startsWith('nats ')).map((c) => c.where.slice(5));
    expect(subjects.some((s) => s.startsWith('sluice.tasks.'))).toBe(true);
    expect(subjects.some((s) => s.startsWith('sluice.outcomes.'))).toBe(true);
    expect(subjects.some((s) => s === 'sluice.runs.sec-run.completed')).toBe(true);
    expect(subjects.some((s) => s.startsWith('$O.sluice_bundles.'))).toBe(true);
    // The check below would see a password inside a task: the role's name is there.
    expect(
      captured.some(
        (c) =>
          c.where.startsWith('nats sluice.tasks.') && c.text.includes(`postgres://${OWNER}@127.0.0.1:${cluster.port}/`),
      ),
    ).toBe(true);
    const outputs = captured.filter((c) => c.where.endsWith(' output'));
    expect(outputs.map((o) => o.where).sort()).toEqual([
      'executor output',
      'executor output',
      'planner output',
      'reporter output',
    ]);
    expect(outputs.some((o) => o.text.includes('"level":"debug"'))).toBe(true);
    // The exported spans hold the run: planner, executors (with their SQL) and reporter.
    const services = new Set(receiver.spans().map((span) => span.serviceName));
    expect([...services].sort()).toEqual(['sluice-executor', 'sluice-planner', 'sluice-reporter']);
    expect(
      receiver.spans().some((span) => span.attributes['db.statement'] !== undefined || span.name.startsWith('pg.')),
    ).toBe(true);
    expect(receiver.spans().some((span) => span.attributes['sluice.tenant_id'] === 'sec-intruder')).toBe(true);
  });

  it('neither password appears in any NATS message, service log, exported span or CLI output, as is, URL-encoded or base64', () => {
    const haystacks = [...captured, { where: 'CLI output', text: cliOutput }];
    expect(findLeaks(haystacks, { pgPassword, natsPassword })).toEqual([]);
  });
});
