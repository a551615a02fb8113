import type { Bottleneck, BottleneckKind, HostWhatIf, RunTimings, TimingTotals } from '@sluice/contracts';

import { BOTTLENECK_THRESHOLDS, splitTime, type WorkSignals, workSignals } from './bottleneck-signals.js';

export {
  BOTTLENECK_THRESHOLDS,
  splitTime,
  type TimeSplit,
  type WorkSignals,
  workSignals,
} from './bottleneck-signals.js';

export const BOTTLENECK_LABELS: Record<BottleneckKind, string> = {
  io: 'network I/O',
  contention: 'contention',
  coordination: 'coordination',
  compute: 'compute',
  external: 'external dependency',
  hostSaturated: 'host saturated',
  executorsSaturated: 'executors saturated',
};

const pct = (share: number): string => `${Math.round(share * 100)}%`;
const ms = (value: number): string =>
  value >= 10_000
    ? `${(value / 1000).toFixed(0)} s`
    : value >= 1_000
      ? `${(value / 1000).toFixed(1)} s`
      : `${Math.round(value)} ms`;

/**
 * The dominant constraint of a run, from where its tenants' time went and the signals that tell a
 * saturated host from a slow network or busy executors. Pure: the same timings give the same
 * verdict. Undefined when no tenant reported timings. `whatIf` (per host, from
 * `RunTimingBook.whatIf`) is attached and names the limit in the lever.
 *
 * Order of the questions: did tenants lose time to an unreachable host (external) or to locks and
 * connection slots (contention)? If not, were they mostly waiting for a slot — and if so, who held
 * the slots: a slow planner, saturated executors, or a host at its limit — or mostly working? Work
 * is then split into network (the host's baseline round trip × the round trips made), queueing
 * (latency above that: a busy host or a busy executor) and database time; the executors' CPU and
 * event-loop delay say whether the queueing was theirs, the host's latency inflation whether it
 * was the host's.
 */
export function classifyBottleneck(timings: RunTimings, whatIf: HostWhatIf[] = []): Bottleneck | undefined {
  const { totals } = timings;
  if (totals.tenants === 0) return undefined;
  const split = splitTime(totals);
  const all = Math.max(split.allMs, 1);
  const share = (v: number): number => v / all;
  const working = split.ioMs + split.computeMs;
  const ws = workSignals(timings);
  const ofWork = (v: number): number => (working > 0 ? v / working : 0);
  const networkShareOfWork = ofWork(ws.networkMs);
  const perTenant = (v: number): number => v / totals.tenants;
  const figures: Record<string, number> = {
    tenants: totals.tenants,
    wallMs: Math.round(timings.wallMs),
    queuedShare: round(share(split.queuedMs)),
    ioShare: round(share(split.ioMs)),
    computeShare: round(share(split.computeMs)),
    lockWaitShare: round(share(split.lockWaitMs)),
    unavailableShare: round(share(split.unavailableMs)),
    retryShare: round(share(split.retryDelayMs)),
    ioShareOfWork: round(ofWork(split.ioMs)),
    networkShareOfWork: round(networkShareOfWork),
    queueingShareOfWork: round(ofWork(ws.queueingMs)),
    executorBusyShare: round(timings.executorBusyShare),
    executors: timings.executors,
    executorSlots: timings.executorSlots,
    avgConnectMs: round(perTenant(totals.connectMs)),
    avgWorkMs: round(perTenant(working)),
    avgQueuedMs: round(perTenant(split.queuedMs)),
  };
  if (timings.planningMs !== null) figures.planningMs = Math.round(timings.planningMs);
  if (ws.worstHost) figures.latencyInflation = round(ws.worstHost.inflation);
  if (ws.executor) {
    figures.executorCpu = round(ws.executor.cpu);
    figures.executorLoopDelayMs = round(ws.executor.loopDelayMs);
    if (ws.executor.loopBusy !== undefined) figures.executorLoopBusy = round(ws.executor.loopBusy);
  }
  if (ws.clientWaitShare !== undefined) figures.clientWaitShare = round(ws.clientWaitShare);
  const notes = notesOf(timings, ws);
  const worstHost = (key: keyof TimingTotals) => [...timings.hosts].sort((a, b) => b[key] - a[key])[0];
  const verdict = (
    kind: BottleneckKind,
    mode: 'working' | 'waiting',
    summary: string,
    lever: string,
    host?: string,
  ): Bottleneck => ({
    kind,
    label: BOTTLENECK_LABELS[kind],
    mode,
    summary,
    lever,
    ...(host ? { host } : {}),
    figures,
    ...(whatIf.length > 0 ? { whatIf } : {}),
    ...(notes.length > 0 ? { notes } : {}),
  });
  const T = BOTTLENECK_THRESHOLDS;
  const executorSaturated =
    ws.executor !== undefined &&
    (ws.executor.cpu >= T.executorCpu ||
      ws.executor.loopDelayMs >= T.executorLoopDelayAloneMs ||
      (ws.executor.loopBusy ?? 0) >= T.executorLoopBusy ||
      (ws.executor.loopDelayMs >= T.executorLoopDelayMs &&
        (ws.executor.cpu >= T.executorCpuStarved || (ws.clientWaitShare ?? 0) >= T.clientWaitShare)) ||
      (ws.executor.cpu >= T.executorCpuStarved && (ws.clientWaitShare ?? 0) >= T.clientWaitShare));
  // The executor's own lateness inflates every latency it measures: the host's rise must exceed it.
  const saturatedHost =
    ws.worstHost &&
    ws.worstHost.inflation >= T.hostInflation &&
    ws.worstHost.excessMsPerTenant >= Math.max(T.hostInflationMs, 2 * (ws.executor?.loopDelayMs ?? 0))
      ? ws.worstHost
      : undefined;
  // The what-if of the host the verdict names (none when it was not among the busiest), or the
  // busiest host's when the verdict names none.
  const peakOf = (host: string | undefined) => (host ? whatIf.find((w) => w.host === host) : whatIf[0]);
  const executorsVerdict = (mode: 'working' | 'waiting', lead: string): Bottleneck =>
    verdict(
      'executorsSaturated',
      mode,
      `${lead}executor ${ws.executor!.executorId} used ${pct(ws.executor!.cpu)} of a core with its event loop ${ws.executor!.loopBusy !== undefined ? `busy ${pct(ws.executor!.loopBusy)} of the time and ` : ''}${ms(ws.executor!.loopDelayMs)} late on average${(ws.clientWaitShare ?? 0) >= T.clientWaitShare ? `, the hosts' active sessions waited on the client ${pct(ws.clientWaitShare!)} of the time` : ''}, and ${pct(ofWork(ws.queueingMs))} of tenant work was latency above the round trips the network explains: the executors' CPU is the limit.`,
      'Add executor replicas or give them more CPU; raising host limits or SLUICE_CONCURRENCY only queues more work on a busy event loop. Migrations that return large result sets cost executor CPU: return less.',
    );
  const hostVerdict = (
    mode: 'working' | 'waiting',
    lead: string,
    host: NonNullable<typeof saturatedHost>,
  ): Bottleneck => {
    const w = peakOf(host.host);
    const advice =
      w && !w.stillRising
        ? ` What-if (${w.model === 'usl' ? 'USL fit' : 'best level seen'} over the levels this run passed through, ${w.observedConcurrency.toFixed(1)} in flight on average): a limit of ${w.peakLimit} is within 5% of the best throughput, predicted run time ${ms(w.predictedWallMs)} against ${ms(w.wallMs)}.`
        : '';
    return verdict(
      'hostSaturated',
      mode,
      `${lead}on ${host.host} connect and journal reads took ${host.inflation.toFixed(1)}× their unloaded time (${ms(host.excessMsPerTenant)} more per tenant) while the executors had CPU to spare: the database host is queueing work (CPU or I/O at capacity), not the network.`,
      `Do not raise the limit: lower the host's limit (SLUICE_HOST_LIMITS), spread the run over time or hosts, or make the migration cheaper.${advice}`,
      host.host,
    );
  };
  const ioAdvice = (host: string | undefined): string => {
    const w = peakOf(host);
    if (!w) return '';
    return w.stillRising
      ? ` What-if: throughput was still rising at ${w.observedConcurrency.toFixed(1)} in flight; a limit of ${w.peakLimit} predicts ${ms(w.predictedWallMs)} against ${ms(w.wallMs)}.`
      : ` What-if: a limit of ${w.peakLimit} is within 5% of the best throughput, predicted ${ms(w.predictedWallMs)} against ${ms(w.wallMs)}.`;
  };
  const networkLine = `${pct(networkShareOfWork)} of each tenant's work was network round trips${ws.known ? ' at their baseline' : ''}`;

  if (share(split.unavailableMs) >= T.unavailable) {
    const host = worstHost('unavailableMs');
    return verdict(
      'external',
      'waiting',
      `${pct(share(split.unavailableMs))} of tenant time was lost to an unreachable database host${host ? ` (most on ${host.host}: ${ms(host.unavailableMs)})` : ''}: failed connects, an open circuit breaker, and the waits after them.`,
      'Restore the host (or its network); Sluice retries and waits while the breaker is open. Raise SLUICE_MAX_ATTEMPTS or SLUICE_BREAKER_RESET if tenants failed before it came back.',
      host?.host,
    );
  }
  if (share(split.lockWaitMs) >= T.contention) {
    const host = worstHost('lockWaitMs');
    return verdict(
      'contention',
      'waiting',
      `${pct(share(split.lockWaitMs))} of tenant time was lost to lock timeouts, a held migration lock or a full connection table${host ? ` (most on ${host.host}: ${ms(host.lockWaitMs)})` : ''}.`,
      'Find the sessions holding the locks (pg_locks / pg_stat_activity); lower the per-host limit (SLUICE_HOST_LIMITS) or shorten the migration transactions; run in a quieter window.',
      host?.host,
    );
  }
  if (share(split.queuedMs) >= T.waiting) {
    const queued = `Tenants waited ${ms(perTenant(split.queuedMs))} on average in the queue against ${ms(perTenant(working))} of work (${pct(share(split.queuedMs))} of tenant time)`;
    if (
      timings.planningMs !== null &&
      timings.planningMs >= T.planning * timings.wallMs &&
      timings.executorBusyShare < T.executorsBusy
    ) {
      return verdict(
        'coordination',
        'waiting',
        `${queued}, while planning took ${ms(timings.planningMs)} of the ${ms(timings.wallMs)} run and executors were busy only ${pct(timings.executorBusyShare)} of their slot time: the planner could not feed them.`,
        'Speed up the registry read (a narrower selector, a faster store) or raise SLUICE_PUBLISH_WINDOW / SLUICE_PLANNER_CONCURRENCY.',
      );
    }
    if (executorSaturated && ws.queueingMs >= ws.networkMs) return executorsVerdict('waiting', `${queued}; `);
    const atLimit = [...timings.hosts]
      .filter((h) => (h.atLimitShare ?? 0) >= T.hostAtLimit)
      .sort((a, b) => (b.atLimitShare ?? 0) - (a.atLimitShare ?? 0));
    const hostAtLimit = atLimit[0];
    if (hostAtLimit) {
      const names = atLimit
        .slice(0, 3)
        .map((h) => `${h.host} (${pct(h.atLimitShare ?? 0)} of samples)`)
        .join(', ');
      if (saturatedHost && ws.queueingMs + split.computeMs > ws.networkMs)
        return hostVerdict('waiting', `${queued}; host limits were full (${names}), and `, saturatedHost);
      if (networkShareOfWork >= (ws.known ? T.ioWithHeadroom : T.io)) {
        return verdict(
          'io',
          'waiting',
          `${queued}; host limits were full (${names}) while ${networkLine}${ws.worstHost ? ` and latency stayed near its baseline (${ws.worstHost.inflation.toFixed(1)}×): the host has headroom` : ''}.`,
          `The database is mostly waiting on the network: raise the per-host limit (SLUICE_HOST_LIMITS) where the host has CPU and connections to spare.${ioAdvice(hostAtLimit.host)}`,
          hostAtLimit.host,
        );
      }
      const headroom = ws.known && ws.worstHost !== undefined;
      return verdict(
        'contention',
        'waiting',
        `${queued}; host limits were full (${names}), and the work is database time (${pct(ofWork(split.computeMs + ws.queueingMs))} of it)${headroom ? `, with latency near its baseline (${ws.worstHost!.inflation.toFixed(1)}×): the host has headroom` : ''}.`,
        headroom
          ? `The host's limit paces the run and the host is not saturated: raise the limit (SLUICE_HOST_LIMITS) and watch its latency; shorten the migration transactions.${ioAdvice(hostAtLimit.host)}`
          : 'The host paces the run at its limit: raise the limit only if the database has headroom; lower it if it is saturated; shorten the migration transactions.',
        hostAtLimit.host,
      );
    }
    // Slots held by tenants waiting inside a saturated host are not the executors' limit — when
    // that waiting is most of the slots' time (a window of one on a slowish host is still the window).
    if (saturatedHost && ws.queueingMs >= T.queueingHoldsSlots * working)
      return hostVerdict('waiting', `${queued}; `, saturatedHost);
    // No host at its cap yet a host saturated: the executors' adaptive limits held the work back,
    // having backed off that host. Their slots, busy or not, were not the limit: more slots or
    // replicas would only queue more work on the host.
    if (saturatedHost)
      return hostVerdict('waiting', `${queued}; the adaptive limit backed off a saturated host: `, saturatedHost);
    if (timings.executorBusyShare >= T.executorsBusy) {
      return verdict(
        'coordination',
        'waiting',
        `${queued}; the ${timings.executors} executor(s) were busy ${pct(timings.executorBusyShare)} of their ${timings.executorSlots} slots' time while no host was at its limit: the executors' in-flight window is the limit.`,
        'Add executor replicas or raise SLUICE_CONCURRENCY (the in-flight window); the database hosts have room.',
      );
    }
    if (networkShareOfWork >= T.io) {
      return verdict(
        'io',
        'waiting',
        `${queued}; executors were busy only ${pct(timings.executorBusyShare)} of their slot time and no host was at its limit, while ${networkLine}: too few tenants in flight per host for I/O-bound work.`,
        `Raise concurrency per host: SLUICE_HOST_START_LIMIT (where the adaptive limit starts) and SLUICE_HOST_LIMITS; I/O-bound work overlaps well.${ioAdvice(undefined)}`,
      );
    }
    return verdict(
      'coordination',
      'waiting',
      `${queued}; yet executors were busy only ${pct(timings.executorBusyShare)} of their slot time and no host was at its limit: work waited while executors idled.`,
      'Check executor discovery and pulls (SLUICE_DISCOVERY_INTERVAL), ack waits and replica health; add replicas if some were down.',
    );
  }
  if (executorSaturated && ws.queueingMs >= ws.networkMs)
    return executorsVerdict('working', 'Tenants were mostly working; ');
  if (networkShareOfWork >= 0.5) {
    const host = worstHost('connectMs');
    const target = timings.hosts.length > 1 ? host?.host : undefined;
    return verdict(
      'io',
      'working',
      `Tenants were mostly working, and ${networkLine} (average connect ${ms(perTenant(totals.connectMs))}, work ${ms(perTenant(working))}).`,
      `Raise the limit: concurrency per host (SLUICE_HOST_LIMITS, SLUICE_CONCURRENCY, executor replicas); I/O-bound work overlaps well. Running executors closer to the databases cuts the round trips.${ioAdvice(target)}`,
      target,
    );
  }
  if (saturatedHost) return hostVerdict('working', 'Tenants were mostly working, and ', saturatedHost);
  const host = worstHost('serverMs');
  return verdict(
    'compute',
    'working',
    `Tenants were mostly working, and ${pct(ofWork(split.computeMs + ws.queueingMs))} of that work was the database executing migration SQL (${ms(perTenant(split.computeMs))} per tenant).`,
    'The migration itself is the cost: make it cheaper (batch backfills, CREATE INDEX CONCURRENTLY, avoid table rewrites), or spread it over more hosts/time.',
    timings.hosts.length > 1 ? host?.host : undefined,
  );
}

/** What the report could not use, in words. */
function notesOf(timings: RunTimings, ws: WorkSignals): string[] {
  const notes: string[] = [];
  if (!ws.known)
    notes.push(
      'No round-trip signals from the executors (older executors, or SLUICE_SIGNALS=off): network and a busy host are not told apart.',
    );
  const hidden = timings.hosts.filter(
    (h) => h.signals && h.signals.activity === null && h.signals.activityUnavailable > 0,
  );
  if (hidden.length > 0)
    notes.push(
      `pg_stat_activity was not readable on ${hidden
        .slice(0, 3)
        .map((h) => h.host)
        .join(', ')} (grant pg_read_all_stats to the migration role to see what sessions wait on).`,
    );
  return notes;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
