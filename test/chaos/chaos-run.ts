import { readFile } from 'node:fs/promises';
import path from 'node:path';

import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type RunCompletedEvent, STREAMS } from '@sluice/contracts';

import { outcomesByTenant, subjectCount } from '../faults-support.js';
import { type PlannedFault, type ServiceTarget } from './chaos-faults.js';
import { alive, type ChaosStack, hostAnswers, tryKill } from './chaos-stack.js';

/** A fault as it happened: when it started and when it was healed (ms after the request). */
export interface FaultRecord extends PlannedFault {
  startedMs?: number;
  healedMs?: number;
  note?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Injects the planned faults into a running stack, each at its moment; resolves once every fault
 * is healed. Faults on the same NATS node set or the same database host wait for each other (one
 * NATS node down at a time keeps the cluster's quorum, so an outage always heals).
 */
export async function injectFaults(
  stack: ChaosStack,
  runId: string,
  faults: PlannedFault[],
  t0: number,
  killed: Set<ServiceTarget>,
): Promise<FaultRecord[]> {
  const records: FaultRecord[] = faults.map((f) => ({ ...f }));
  const locks = new Map<string, Promise<void>>();
  const serial = async (key: string, fn: () => Promise<void>) => {
    const before = locks.get(key) ?? Promise.resolve();
    const mine = before.then(fn, fn);
    locks.set(
      key,
      mine.catch(() => undefined),
    );
    await mine;
  };
  const now = () => Date.now() - t0;

  const one = async (r: FaultRecord): Promise<void> => {
    await sleep(Math.max(0, r.atMs - now()));
    switch (r.kind) {
      // One fault at a time per service: a kill never meets a half-restarted process.
      case 'kill':
        await serial(`svc-${r.target}`, async () => {
          const target = r.target as ServiceTarget;
          const s = stack.services.get(target)!;
          killed.add(target);
          r.startedMs = now();
          await s.kill();
          await sleep(r.durationMs);
          await stack.startTarget(target);
          r.healedMs = now();
        });
        return;
      case 'freeze':
        await serial(`svc-${r.target}`, async () => {
          const s = stack.services.get(r.target as ServiceTarget)!;
          r.startedMs = now();
          tryKill(s.pid, 'SIGSTOP');
          await sleep(r.durationMs);
          if (!tryKill(s.pid, 'SIGCONT') || !alive(s)) r.note = 'exited while frozen';
          r.healedMs = now();
        });
        return;
      case 'nats-kill':
        await serial('nats', async () => {
          const node = stack.cluster.nodes.find((n) => n.name.endsWith(r.target!))!;
          r.startedMs = now();
          await node.kill();
          await sleep(r.durationMs);
          // As a supervisor would: a node that does not come up (it exited, or its port did not
          // open within 10 s on a loaded machine) is started again; the error says why.
          for (let attempt = 1; ; attempt++) {
            try {
              await node.start();
              break;
            } catch (error) {
              console.log(
                `[chaos] ${node.name} did not start (attempt ${attempt}): ${(error as Error).message.slice(0, 600)}`,
              );
              await node.kill();
              if (attempt >= 5) throw error;
              await sleep(1_000);
            }
          }
          await stack.cluster.waitReady(60_000);
          r.healedMs = now();
        });
        return;
      case 'pg-stop':
        await serial(`pg-${r.target}`, async () => {
          const host = stack.hosts[r.target as 'a' | 'b'];
          r.startedMs = now();
          await host.stop('immediate');
          await sleep(r.durationMs);
          await host.start().catch(async (error: unknown) => {
            // pg_ctl stops waiting after 30 s; the server may still be recovering, as a crashed
            // production host would: the fault heals when it answers.
            if (await hostAnswers(`postgres://postgres@127.0.0.1:${host.port}`, 90_000)) return;
            // pg_ctl's own message says little: the server's log says why it did not come up.
            const log = await readFile(path.join(path.dirname(host.dataDir), 'log'), 'utf8').catch(() => '');
            throw new Error(
              `${(error as Error).message.slice(0, 120)} … log: ${log.split('\n').slice(-8).join(' | ')}`,
            );
          });
          r.healedMs = now();
        });
        return;
      case 'host-cut':
        await serial('proxy', async () => {
          r.startedMs = now();
          stack.proxy.setUnreachable(true);
          await sleep(r.durationMs);
          stack.proxy.setUnreachable(false);
          r.healedMs = now();
        });
        return;
      case 'duplicate-request':
        r.startedMs = now();
        await stack.publishRequest(runId, true);
        await stack.publishRequest(runId, false);
        r.healedMs = now();
        return;
      case 'pause-resume':
        await serial('control', async () => {
          r.startedMs = now();
          const paused = await retryCli(stack, ['pause', runId, '--reason', 'chaos', '--requested-by', 'chaos']);
          if (paused.code !== 0) {
            // Exit 5: the control does not apply (the run completed already).
            r.note = `pause exit ${paused.code}: ${paused.output.replace(/\s+/g, ' ').slice(0, 120)}`;
          } else {
            await sleep(r.durationMs);
            const resumed = await retryCli(stack, ['resume', runId, '--reason', 'chaos', '--requested-by', 'chaos']);
            if (resumed.code !== 0)
              r.note = `resume exit ${resumed.code}: ${resumed.output.replace(/\s+/g, ' ').slice(0, 200)}`;
            if (resumed.tooSlow) r.note = `fault failed: ${resumed.tooSlow}`;
          }
          // A command that hung is an anomaly even when it did its job (the harness goes on).
          if (paused.tooSlow) r.note = `fault failed: ${paused.tooSlow}`;
          r.healedMs = now();
        });
        return;
    }
  };
  await Promise.all(
    records.map((r) =>
      one(r).catch((error: unknown) => {
        r.note = `fault failed: ${(error as Error).message.slice(0, 1_500)}`;
        r.healedMs ??= now();
      }),
    ),
  );
  return records;
}

/** The CLI through NATS faults: retried while it cannot reach the cluster (exit 5 with a connection error). */
/**
 * The longest one CLI command may take under faults: it reads and publishes through whichever
 * NATS node answers, and a node comes back within seconds. Longer is an anomaly (a `sluice pause`
 * once took two minutes to exit after it had answered).
 */
const CLI_BOUND_MS = 30_000;

async function retryCli(
  stack: ChaosStack,
  args: string[],
): Promise<{ code: number | null; output: string; tooSlow?: string }> {
  let last: { code: number | null; output: string; tooSlow?: string } = { code: null, output: '' };
  let tooSlow: string | undefined;
  for (let i = 0; i < 10; i++) {
    const started = Date.now();
    last = await stack.cli(args);
    const took = Date.now() - started;
    if (took > CLI_BOUND_MS)
      tooSlow ??= `sluice ${args[0]} took ${(took / 1000).toFixed(1)} s (bound ${CLI_BOUND_MS / 1000} s), exit ${last.code}: ${last.output.replace(/\s+/g, ' ').slice(0, 300)}`;
    if (tooSlow) last.tooSlow = tooSlow;
    // A control that takes more than a few seconds, or is asked again, is worth seeing: it delays
    // the run's end (a `sluice pause` once hung for two minutes while a NATS node restarted).
    if (took > 10_000 || last.code !== 0)
      console.log(
        `[chaos] sluice ${args[0]} attempt ${i + 1} took ${(took / 1000).toFixed(1)} s, exit ${last.code}: ${last.output.replace(/\s+/g, ' ').slice(0, 300)}`,
      );
    if (last.code === 0) return last;
    if (!/timeout|timed out|no progress|connect|no responders|503|leader/i.test(last.output)) return last;
    await sleep(1_000);
  }
  return last;
}

/** Waits for the run's `completed` event by asking the stream, which survives a NATS node going away. */
export async function waitForRunCompleted(
  jsm: JetStreamManager,
  runId: string,
  timeoutMs: number,
): Promise<RunCompletedEvent | undefined> {
  const deadline = Date.now() + timeoutMs;
  const subject = `sluice.runs.${runId}.completed`;
  while (Date.now() < deadline) {
    try {
      if ((await subjectCount(jsm, STREAMS.runs.name, subject)) > 0) {
        const msg = await jsm.streams.getMessage(STREAMS.runs.name, { last_by_subj: subject });
        return msg?.json<RunCompletedEvent>();
      }
    } catch {
      // A node is down or a leader is being elected: ask again.
    }
    await sleep(500);
  }
  return undefined;
}

/**
 * The longest time after the last fault healed during which the run made no progress: no tenant
 * got its first outcome, and the run had not completed. A run that waits on a lost lease or a lost
 * task shows it here, however much work is left (which the time to complete mixes in).
 */
export async function longestStallAfter(
  nc: NatsConnection,
  runId: string,
  lastHeal: number,
  finishedAt: number,
): Promise<number> {
  const firsts = [...(await outcomesByTenant(nc, runId)).values()]
    .map((o) => Math.min(...o.map((x) => Date.parse(x.finishedAt))))
    .filter((t) => t > lastHeal && t < finishedAt)
    .sort((a, b) => a - b);
  let longest = 0;
  let previous = lastHeal;
  for (const t of [...firsts, finishedAt]) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return longest;
}
