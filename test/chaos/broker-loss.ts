/**
 * `npm run chaos:broker-loss [-- --tenants N] [--logs]`: total broker loss on the chaos stack (a
 * 3-node NATS cluster with 3-replica streams, two PostgreSQL hosts, two planners, three executors,
 * two reporters as processes). Mid-run every node is killed, its JetStream store deleted, and the
 * cluster started empty. An independent checker (the databases, the public events, the processes)
 * then requires: every service still running (no restart), the whole topology back, the run's fate
 * clear (one `lost` event naming the recover command, `sluice status` saying so), `sluice runs
 * recover` publishing one `completed` whose counts equal the journals, no version applied twice,
 * and a new run completing on the healed stack. Not part of `npm test`.
 */
import { spawn } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { topologyStreamNames } from '@sluice/bus';
import { type RunCompletedEvent, type RunLostEvent, STREAMS } from '@sluice/contracts';
import { MIGRATIONS_DIR, REPO_ROOT, type TenantFleet } from '@sluice/testkit';

import { subjectCount } from '../faults-support.js';
import { waitForRunCompleted } from './chaos-run.js';
import { SLOW_VERSION, startChaosStack } from './chaos-stack.js';

const { values } = parseArgs({
  options: {
    tenants: { type: 'string' },
    logs: { type: 'boolean', default: false },
  },
});
const perHost = Math.floor(Number(values.tenants ?? 100) / 2);
const log = (line: string) => console.log(`[broker-loss] ${line}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** How long the healed stack may take to have its topology back and the lost run announced. */
const HEAL_BOUND_MS = 30_000;

interface JournalTruth {
  tenantId: string;
  /** The tenant's journal holds rows carrying the run's id. */
  reached: boolean;
  dirty: boolean;
  /** Every version of the set applied, once. */
  complete: boolean;
  doubled: string[];
}

async function journalTruth(fleets: TenantFleet[], runId: string, versions: number[]): Promise<JournalTruth[]> {
  const per = await Promise.all(
    fleets.map((fleet) =>
      fleet.eachTenant(async (c, t) => {
        const truth: JournalTruth = {
          tenantId: t.tenantId,
          reached: false,
          dirty: false,
          complete: false,
          doubled: [],
        };
        if (
          !(await c.query<{ r: string | null }>("SELECT to_regclass('public.sluice_migrations')::text AS r")).rows[0]!.r
        )
          return truth;
        const rows = (
          await c.query<{ version: number; status: string; n: number; ours: number }>(
            'SELECT version::int, min(status) AS status, count(*)::int AS n, count(*) FILTER (WHERE run_id = $1)::int AS ours FROM sluice_migrations GROUP BY version ORDER BY version',
            [runId],
          )
        ).rows;
        truth.reached = rows.some((r) => r.ours > 0);
        truth.dirty = rows.some((r) => r.status === 'dirty');
        truth.doubled = rows.filter((r) => r.n > 1).map((r) => `journal v${r.version} x${r.n}`);
        truth.complete =
          rows.length === versions.length && rows.every((r, i) => r.version === versions[i] && r.n === 1);
        const effects = (await c.query<{ r: string | null }>("SELECT to_regclass('public.chaos_effects')::text AS r"))
          .rows[0]!.r
          ? (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM chaos_effects')).rows[0]!.n
          : 0;
        const slow = rows.some((r) => r.version === SLOW_VERSION) ? 1 : 0;
        if (effects !== slow) truth.doubled.push(`slow file ran ${effects} times, journal says ${slow}`);
        return truth;
      }, 6),
    ),
  );
  return per.flat();
}

async function main(): Promise<number> {
  // Up files only: a down file shares its version.
  const versions = (await readdir(MIGRATIONS_DIR))
    .filter((f) => !f.endsWith('.down.sql'))
    .map((f) => /^(\d+)_.*\.sql$/.exec(f)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  versions.push(SLOW_VERSION);
  const stack = await startChaosStack(log);
  process.once('SIGINT', () => void stack.dispose().then(() => process.exit(130)));
  const anomalies: string[] = [];
  const figures: string[] = [];
  try {
    const tag = `bl${Date.now().toString(36).slice(-4)}`;
    const runId = `chaos-${tag}-lost`;
    const fleets = await stack.createFleets(tag, perHost);
    const total = perHost * 2;
    const pids = new Map([...stack.services].map(([t, s]) => [t, s.pid]));
    await stack.publishRequest(runId);
    const t0 = Date.now();
    // Mid-run: a share of the tenants settled, most still to go.
    while (
      (await subjectCount(stack.jsm, STREAMS.outcomes.name, `sluice.outcomes.${runId}`).catch(() => 0)) <
      total / 5
    ) {
      if (Date.now() - t0 > 120_000) throw new Error('the run did not start within 120 s');
      await sleep(100);
    }
    const settledBefore = await subjectCount(stack.jsm, STREAMS.outcomes.name, `sluice.outcomes.${runId}`);
    log(
      `${settledBefore}/${total} outcomes after ${Date.now() - t0} ms: killing every NATS node and deleting its store`,
    );

    for (const node of stack.cluster.nodes) await node.kill();
    for (const node of stack.cluster.nodes) await rm(node.storeDir, { recursive: true, force: true });
    await Promise.all(stack.cluster.nodes.map((n) => n.start()));
    await stack.cluster.waitReady(60_000);
    const backAt = Date.now();
    log('cluster started empty and has a JetStream meta leader');
    // The harness's own client reconnects by itself, like the services' (its requests are retried).
    const { jsm } = stack;
    // 1. Every service heals by itself: one recovery log line each, same process.
    const healedMs: number[] = [];
    for (const [target, s] of stack.services) {
      const line = await s.waitForLog((l) => l.topology !== undefined, HEAL_BOUND_MS).catch(() => undefined);
      if (!line) anomalies.push(`${target} ${s.pid}: no topology recovery within ${HEAL_BOUND_MS} ms`);
      else healedMs.push(Date.parse(String(line.time)) - backAt);
      if (pids.get(target) !== s.pid || s.logs.some((l) => l.level === 'fatal'))
        anomalies.push(`${target}: restarted or died (pid ${pids.get(target)} -> ${s.pid})`);
    }
    if (healedMs.length)
      figures.push(
        `services healed ${Math.min(...healedMs)}–${Math.max(...healedMs)} ms after the empty cluster was ready`,
      );

    // 2. The topology is back, replicated as configured.
    const names = new Map<string, number>();
    for await (const info of jsm.streams.list()) names.set(info.config.name, info.config.num_replicas);
    for (const name of topologyStreamNames()) {
      if (!names.has(name)) anomalies.push(`stream ${name} missing after the heal`);
      else if (names.get(name) !== 3) anomalies.push(`stream ${name} has ${names.get(name)} replicas, not 3`);
    }

    // 3. The run's fate is clear: one lost event naming the command, and sluice status says so.
    const lostSubject = `sluice.runs.${runId}.lost`;
    let lost: RunLostEvent | undefined;
    for (const deadline = Date.now() + HEAL_BOUND_MS; !lost && Date.now() < deadline; await sleep(250)) {
      const msg = await jsm.streams.getMessage(STREAMS.runs.name, { last_by_subj: lostSubject }).catch(() => null);
      lost = msg?.json<RunLostEvent>();
    }
    if (!lost) anomalies.push('no lost event for the run');
    else {
      figures.push(`lost event ${Date.parse(lost.detectedAt) - backAt} ms after the empty cluster was ready`);
      if (lost.recover !== `sluice runs recover ${runId}`) anomalies.push(`lost event names "${lost.recover}"`);
      const n = await subjectCount(jsm, STREAMS.runs.name, lostSubject);
      if (n !== 1) anomalies.push(`${n} lost events`);
    }
    const status = await stack.cli(['status', runId]);
    if (status.code !== 1 || !status.output.includes('LOST') || !status.output.includes(`sluice runs recover ${runId}`))
      anomalies.push(`sluice status: exit ${status.code}, ${status.output.replace(/\s+/g, ' ').slice(0, 200)}`);

    // 4. Serving again: a new run over the same tenants completes on the healed stack.
    const nextRun = `chaos-${tag}-after`;
    const requestedAt = Date.now();
    await stack.publishRequest(nextRun);
    const next = await waitForRunCompleted(jsm, nextRun, 240_000);
    if (!next) anomalies.push('the run after the loss did not complete within 240 s');
    else {
      figures.push(
        `a new run requested ${requestedAt - backAt} ms after the heal completed in ${Date.now() - requestedAt} ms`,
      );
      const c = next.counts;
      if (c.total !== total || c.migrated + c.upToDate !== total)
        anomalies.push(`the run after the loss: ${JSON.stringify(c)}`);
    }

    // 5. Recovered from the journals, once; counts equal to the journals' truth.
    const truths = await journalTruth(fleets, runId, versions);
    const recover = await recoverCli(stack.serviceEnv, runId);
    if (recover.code !== 0)
      anomalies.push(`sluice runs recover: exit ${recover.code}: ${recover.output.slice(0, 300)}`);
    const recovered: RunCompletedEvent | undefined = await waitForRunCompleted(jsm, runId, 30_000);
    const reached = truths.filter((t) => t.reached);
    if (!recovered?.recovered) anomalies.push('no recovered completed event');
    else {
      const c = recovered.counts;
      const dirty = reached.filter((t) => t.dirty).length;
      if (c.total !== total) anomalies.push(`recovered total ${c.total}, ${total} tenants`);
      if (c.migrated !== reached.length - dirty || c.failed !== dirty || c.skipped !== total - reached.length)
        anomalies.push(
          `recovered counts ${JSON.stringify(c)}, the journals: ${reached.length} reached (${dirty} dirty) of ${total}`,
        );
      figures.push(
        `recovered: ${c.migrated} migrated, ${c.failed} failed, ${c.skipped} skipped (${recovered.recovered.notReached} not reached) = the journals`,
      );
    }
    const completedEvents = await subjectCount(jsm, STREAMS.runs.name, `sluice.runs.${runId}.completed`);
    if (completedEvents !== 1) anomalies.push(`${completedEvents} completed events for the lost run`);
    const again = await recoverCli(stack.serviceEnv, runId);
    if (again.code === 0) anomalies.push('a second recover published again');

    // 6. Nothing applied twice anywhere; every tenant complete after the second run; no password in logs.
    for (const t of truths) {
      for (const d of t.doubled) anomalies.push(`${t.tenantId}: ${d}`);
      if (!t.complete && next) anomalies.push(`${t.tenantId}: journal incomplete after the second run`);
    }
    for (const s of stack.allProcesses)
      if (s.output.some((line) => line.includes(stack.password)))
        anomalies.push(`${s.name} ${s.pid} logged the database password`);
    log(`${settledBefore}/${total} settled before the loss; ${reached.length} tenants reached by the lost run`);
    if (values.logs || anomalies.length > 0)
      for (const s of stack.allProcesses)
        for (const l of s.logs.filter((x) => x.level !== 'info' && x.level !== 'debug').slice(-15))
          console.log(`${s.name} ${s.pid} ${JSON.stringify(l).slice(0, 300)}`);
  } finally {
    await stack.dispose();
  }
  for (const f of figures) log(f);
  log(
    anomalies.length === 0
      ? 'broker loss: 0 anomalies'
      : `broker loss: ${anomalies.length} anomalies\n${anomalies.map((a) => `  - ${a}`).join('\n')}`,
  );
  return anomalies.length === 0 ? 0 : 1;
}

/** `sluice runs recover` with the services' registry and Postgres settings. */
function recoverCli(env: Record<string, string>, runId: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(REPO_ROOT, 'packages/cli/dist/main.js'), 'runs', 'recover', runId, '--json'],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('exit', (code) => resolve({ code, output }));
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
