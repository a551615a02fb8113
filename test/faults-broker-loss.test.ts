import { rm } from 'node:fs/promises';

import { jetstream } from '@nats-io/jetstream';
import { topologyStreamNames } from '@sluice/bus';
import { EXIT, runCli } from '@sluice/cli';
import {
  REQUEST_SUBJECT,
  type RunCompletedEvent,
  runEventSubject,
  type RunLostEvent,
  STREAMS,
} from '@sluice/contracts';
import { apiHeaders, countOutcomes, type ServiceProcess, waitForCompleted } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FAULT_VERSIONS, type FaultStack, faultStack, journals, markTenants, natsClient } from './faults-support.js';

const TENANTS = 40;
const RUN = 'fx-bl-1';

/**
 * Total broker loss: mid-run, the NATS server is killed, its store directory deleted, and it is
 * started empty. The same service processes must re-create the topology by themselves and serve a
 * new run; the run in flight must be reported lost with the command that recovers it — by the
 * event, `sluice status`, `GET /runs/:id`, and a `sluice migrate --wait` that was following it —
 * and that command must publish its completion with the counts the journals hold.
 */
describe('the JetStream store lost in the middle of a run', () => {
  let stack: FaultStack;

  beforeAll(async () => {
    stack = await faultStack('fx-brokerloss', TENANTS);
    // Every tenant spends a moment in migration 2, so the run is still going when the store goes.
    await markTenants(stack.fleet, new Set(stack.fleet.tenants.map((t) => t.tenantId)), { slowSeconds: 0.3 });
  });

  afterAll(() => stack?.dispose());

  it('services heal without a restart, the lost run is reported with its recover command, and recovered from the journals', async () => {
    const { nats, ws, fleet } = stack;
    const env = stack.env({
      SLUICE_DISCOVERY_INTERVAL: '200ms',
      SLUICE_HOST_LIMIT: '4',
      SLUICE_RETRY_BASE: '300ms',
      SLUICE_RETRY_MAX: '2s',
      SLUICE_ACK_WAIT: '5s',
      SLUICE_RECONCILE_AFTER: '5s',
      SLUICE_RECONCILE_INTERVAL: '1s',
    });
    const services: ServiceProcess[] = [
      await ws.start('reporter', env),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'bl-x1', SLUICE_CONCURRENCY: '2' }),
      await ws.start('executor', { ...env, SLUICE_EXECUTOR_ID: 'bl-x2', SLUICE_CONCURRENCY: '2' }),
      await ws.start('planner', env),
    ];
    const pids = services.map((s) => s.pid);
    const sluice = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(args, env, {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        isTTY: false,
        redraw: () => undefined,
      });
      return { code, out: out.join('\n'), err: err.join('\n'), at: Date.now() };
    };
    // The run is started the way an operator does, and followed to its end: the loss must end the wait.
    const waiting = sluice('migrate', '--run-id', RUN, '--wait', '--timeout', '120s');
    await expect.poll(() => countOutcomes(stack.nc, RUN), { timeout: 60_000, interval: 50 }).toBeGreaterThanOrEqual(8);
    const before = await countOutcomes(stack.nc, RUN);

    // The crash: no flush, then the store is gone and the server starts empty.
    await nats.kill();
    await rm(nats.storeDir, { recursive: true, force: true });
    await nats.restart();
    const backAt = Date.now();
    await stack.nc.close();
    const { nc, jsm } = await natsClient(nats.url);
    try {
      // Each service re-creates what it needs, on its own: one warning each, naming what.
      const healed: Record<string, string> = {};
      for (const s of services) {
        const line = await s.waitForLog((l) => l.topology !== undefined, 30_000);
        const reconnected = await s.waitForLog((l) => l.nats === 'reconnect', 1_000).catch(() => undefined);
        healed[`${s.name}:${s.pid}`] =
          `reconnected +${reconnected ? Date.parse(String(reconnected.time)) - backAt : '?'} ms, healed +${Date.parse(String(line.time)) - backAt} ms (took ${String((line.topology as { ms: number }).ms)} ms)`;
        if (process.env.FX_DEBUG)
          console.log(
            s.name,
            s.logs
              .filter((l) => l.level !== 'info')
              .map((l) => JSON.stringify(l).slice(0, 400))
              .join('\n'),
          );
        expect((line.topology as { runsLost: boolean }).runsLost).toBe(true);
      }
      const names = new Set<string>();
      for await (const info of jsm.streams.list()) names.add(info.config.name);
      expect([...names].sort()).toEqual([...topologyStreamNames()].sort());
      expect((await jsm.consumers.info(STREAMS.requests.name, 'sluice-planner')).name).toBe('sluice-planner');

      // The lost run: published once by the reporter, with the command that recovers it.
      const lostSubject = runEventSubject(RUN, 'lost');
      await expect
        .poll(() => jsm.streams.getMessage(STREAMS.runs.name, { last_by_subj: lostSubject }).catch(() => null), {
          timeout: 20_000,
          interval: 100,
        })
        .toBeTruthy();
      const lost = (await jsm.streams.getMessage(STREAMS.runs.name, {
        last_by_subj: lostSubject,
      }))!.json<RunLostEvent>();
      const info = await jsm.streams.info(STREAMS.runs.name, { subjects_filter: lostSubject });
      expect(info.state.subjects?.[lostSubject]).toBe(1);
      expect(lost).toMatchObject({ runId: RUN, reason: 'store_lost', recover: `sluice runs recover ${RUN}` });
      expect(lost.lastKnown.settled).toBeGreaterThanOrEqual(before);
      expect(lost.lastKnown.total).toBe(TENANTS);
      const reporterLog = services[0]!.logs.find((l) => l.runId === RUN && l.level === 'error');
      expect(String(reporterLog?.msg)).toContain(`sluice runs recover ${RUN}`);

      const status = await sluice('status', RUN);
      expect(status.code).toBe(1);
      expect(status.out).toMatch(/LOST/);
      expect(status.out).toContain(`sluice runs recover ${RUN}`);
      expect(JSON.parse((await sluice('status', RUN, '--json')).out)).toMatchObject({
        runId: RUN,
        status: 'lost',
        lost: { recover: `sluice runs recover ${RUN}` },
      });
      const lostList = await sluice('runs', '--status', 'lost', '--json');
      expect(lostList.out.split('\n').map((l) => (JSON.parse(l) as { runId: string }).runId)).toEqual([RUN]);
      const unknown = await sluice('status', 'fx-bl-never');
      expect(unknown.err).toContain('sluice runs recover fx-bl-never');

      // The reporter's HTTP API says the same: lost, what was known, and the command.
      const port = (await services[0]!.waitForLog((l) => l.msg === 'reporter ready')).httpPort as number;
      const api = await fetch(`http://127.0.0.1:${port}/runs/${RUN}`, { headers: apiHeaders() });
      expect(api.status).toBe(200);
      expect(await api.json()).toMatchObject({
        runId: RUN,
        status: 'lost',
        total: TENANTS,
        done: lost.lastKnown.settled,
        lost: { lastKnown: lost.lastKnown },
        recover: `sluice runs recover ${RUN}`,
      });
      const listed = (await (
        await fetch(`http://127.0.0.1:${port}/runs?status=lost`, { headers: apiHeaders() })
      ).json()) as {
        runs: Array<{ runId: string }>;
      };
      expect(listed.runs.map((r) => r.runId)).toEqual([RUN]);

      // The migrate --wait started before the loss: ended by it, with the command, not by its timeout.
      const waited = await waiting;
      expect(waited.code, waited.err).toBe(EXIT.lost);
      expect(waited.err).toMatch(new RegExp(`run ${RUN}: LOST`));
      expect(waited.err).toContain(`sluice runs recover ${RUN}`);
      const waitEndedMs = waited.at - backAt;

      // Serving again, same processes: a new run plans, executes and completes.
      const requestedAt = Date.now();
      await jetstream(nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId: 'fx-bl-2', target: 'latest' }));
      const second = await waitForCompleted(nc, 'fx-bl-2', 90_000);
      const servingMs = Date.now() - backAt;
      const runMs = Date.now() - requestedAt;
      expect(second).toMatchObject({ status: 'succeeded', counts: { total: TENANTS, failed: 0 } });
      expect(second.counts.migrated + second.counts.upToDate).toBe(TENANTS);
      console.log(
        `broker loss: ${before}/${TENANTS} outcomes before the loss; topology re-created: ${JSON.stringify(healed)}; migrate --wait exited ${waitEndedMs} ms after the empty server was back; a new run requested ${requestedAt - backAt} ms after the empty server was back completed in ${runMs} ms (${servingMs} ms after it was back)`,
      );
      expect(services.map((s) => s.pid)).toEqual(pids);
      for (const s of services) {
        expect(() => process.kill(s.pid, 0)).not.toThrow();
        expect(s.logs.filter((l) => l.level === 'fatal')).toEqual([]);
      }

      // The journals: every version exactly once, every tenant at the last one.
      const rows = await journals(fleet);
      for (const [tenantId, r] of rows)
        expect(
          r.map((x) => [x.version, x.n]),
          tenantId,
        ).toEqual(FAULT_VERSIONS.map((v) => [v, 1]));
      const reached = await fleet.eachTenant(
        async (c) =>
          (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM sluice_migrations WHERE run_id = $1', [RUN]))
            .rows[0]!.n > 0,
      );
      const migratedByRun = reached.filter(Boolean).length;

      // Recovered from the journals: the counts are the journals' truth.
      const recover = await sluice('runs', 'recover', RUN, '--json');
      expect(recover.code, recover.err).toBe(0);
      const recovered = await waitForCompleted(nc, RUN, 10_000);
      expect(recovered).toMatchObject<Partial<RunCompletedEvent>>({
        runId: RUN,
        counts: {
          total: TENANTS,
          migrated: migratedByRun,
          upToDate: 0,
          pending: 0,
          failed: 0,
          skipped: TENANTS - migratedByRun,
        },
        recovered: { notReached: TENANTS - migratedByRun, unreadable: 0 },
      });
      expect(migratedByRun).toBeGreaterThanOrEqual(before);
      const after = await sluice('status', RUN);
      expect(after.out).not.toMatch(/LOST/);
      expect(after.out).toMatch(/recovered from the journals/);
      await expect
        .poll(
          async () =>
            (
              (await (await fetch(`http://127.0.0.1:${port}/runs/${RUN}`, { headers: apiHeaders() })).json()) as {
                completed: RunCompletedEvent | null;
              }
            ).completed?.recovered,
          { timeout: 10_000, interval: 100 },
        )
        .toEqual({ notReached: TENANTS - migratedByRun, unreadable: 0 });
    } finally {
      await nc.close();
    }
  });
});
