import type { Bottleneck, BottleneckKind, RunTimings, TimingTotals } from '@sluice/contracts';

export const BOTTLENECK_LABELS: Record<BottleneckKind, string> = {
  io: 'waiting on I/O',
  contention: 'contention',
  coordination: 'coordination',
  compute: 'compute',
  external: 'external dependency',
};

/** Thresholds of the classifier, as shares of all tenant time (0..1). */
export const BOTTLENECK_THRESHOLDS = {
  /** Time lost to unreachable hosts / open breakers that makes the verdict `external`. */
  unavailable: 0.15,
  /** Time lost to lock and connection-slot contention that makes the verdict `contention`. */
  contention: 0.15,
  /** Queue share above which the run counts as `waiting` for a slot. */
  waiting: 0.5,
  /** Executor busy share (of slots x wall time) above which the executors are the limit. */
  executorsBusy: 0.6,
  /** Share of queue samples with a host at its limit that makes the host the limit. */
  hostAtLimit: 0.5,
  /** Planning share of the wall time above which a slow planner starved the executors. */
  planning: 0.5,
  /** Network share of tenant work above which work counts as I/O-bound. */
  io: 0.6,
} as const;

/** How one tenant's time splits, summed over a run (or a host). */
export interface TimeSplit {
  /** Connect, journal round trip and the network part of executing SQL. */
  ioMs: number;
  /** Database time executing migration SQL. */
  computeMs: number;
  queuedMs: number;
  lockWaitMs: number;
  unavailableMs: number;
  retryDelayMs: number;
  allMs: number;
}

export function splitTime(t: TimingTotals): TimeSplit {
  const networkMs = Math.max(0, t.executeMs - t.serverMs);
  const ioMs = t.connectMs + t.journalMs + networkMs;
  const computeMs = Math.min(t.serverMs, t.executeMs);
  const allMs = ioMs + computeMs + t.queuedMs + t.lockWaitMs + t.unavailableMs + t.retryDelayMs;
  return {
    ioMs,
    computeMs,
    queuedMs: t.queuedMs,
    lockWaitMs: t.lockWaitMs,
    unavailableMs: t.unavailableMs,
    retryDelayMs: t.retryDelayMs,
    allMs,
  };
}

const pct = (share: number): string => `${Math.round(share * 100)}%`;
const ms = (value: number): string =>
  value >= 10_000
    ? `${(value / 1000).toFixed(0)} s`
    : value >= 1_000
      ? `${(value / 1000).toFixed(1)} s`
      : `${Math.round(value)} ms`;

/**
 * The dominant constraint of a run, from where its tenants' time went. Pure: the same timings give
 * the same verdict. Undefined when no tenant reported timings.
 *
 * Order of the questions: did tenants lose time to an unreachable host (external) or to locks and
 * connection slots (contention)? If not, were they mostly waiting for a slot — and if so, who held
 * the slots: a slow planner, busy executors, or a host at its limit — or mostly working, and then
 * on the network (I/O) or in the database (compute)?
 */
export function classifyBottleneck(timings: RunTimings): Bottleneck | undefined {
  const { totals } = timings;
  if (totals.tenants === 0) return undefined;
  const split = splitTime(totals);
  const all = Math.max(split.allMs, 1);
  const share = (v: number): number => v / all;
  const working = split.ioMs + split.computeMs;
  const ioShareOfWork = working > 0 ? split.ioMs / working : 0;
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
    ioShareOfWork: round(ioShareOfWork),
    executorBusyShare: round(timings.executorBusyShare),
    executors: timings.executors,
    executorSlots: timings.executorSlots,
    avgConnectMs: round(perTenant(totals.connectMs)),
    avgWorkMs: round(perTenant(working)),
    avgQueuedMs: round(perTenant(split.queuedMs)),
  };
  if (timings.planningMs !== null) figures.planningMs = Math.round(timings.planningMs);
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
  });

  if (share(split.unavailableMs) >= BOTTLENECK_THRESHOLDS.unavailable) {
    const host = worstHost('unavailableMs');
    return verdict(
      'external',
      'waiting',
      `${pct(share(split.unavailableMs))} of tenant time was lost to an unreachable database host${host ? ` (most on ${host.host}: ${ms(host.unavailableMs)})` : ''}: failed connects, an open circuit breaker, and the waits after them.`,
      'Restore the host (or its network); Sluice retries and waits while the breaker is open. Raise SLUICE_MAX_ATTEMPTS or SLUICE_BREAKER_RESET if tenants failed before it came back.',
      host?.host,
    );
  }
  if (share(split.lockWaitMs) >= BOTTLENECK_THRESHOLDS.contention) {
    const host = worstHost('lockWaitMs');
    return verdict(
      'contention',
      'waiting',
      `${pct(share(split.lockWaitMs))} of tenant time was lost to lock timeouts, a held migration lock or a full connection table${host ? ` (most on ${host.host}: ${ms(host.lockWaitMs)})` : ''}.`,
      'Find the sessions holding the locks (pg_locks / pg_stat_activity); lower the per-host limit (SLUICE_HOST_LIMITS) or shorten the migration transactions; run in a quieter window.',
      host?.host,
    );
  }
  if (share(split.queuedMs) >= BOTTLENECK_THRESHOLDS.waiting) {
    const queued = `Tenants waited ${ms(perTenant(split.queuedMs))} on average in the queue against ${ms(perTenant(working))} of work (${pct(share(split.queuedMs))} of tenant time)`;
    if (
      timings.planningMs !== null &&
      timings.planningMs >= BOTTLENECK_THRESHOLDS.planning * timings.wallMs &&
      timings.executorBusyShare < BOTTLENECK_THRESHOLDS.executorsBusy
    ) {
      return verdict(
        'coordination',
        'waiting',
        `${queued}, while planning took ${ms(timings.planningMs)} of the ${ms(timings.wallMs)} run and executors were busy only ${pct(timings.executorBusyShare)} of their slot time: the planner could not feed them.`,
        'Speed up the registry read (a narrower selector, a faster store) or raise SLUICE_PUBLISH_WINDOW / SLUICE_PLANNER_CONCURRENCY.',
      );
    }
    const atLimit = [...timings.hosts]
      .filter((h) => (h.atLimitShare ?? 0) >= BOTTLENECK_THRESHOLDS.hostAtLimit)
      .sort((a, b) => (b.atLimitShare ?? 0) - (a.atLimitShare ?? 0));
    const hostAtLimit = atLimit[0];
    if (hostAtLimit) {
      const names = atLimit
        .slice(0, 3)
        .map((h) => `${h.host} (${pct(h.atLimitShare ?? 0)} of samples)`)
        .join(', ');
      if (ioShareOfWork >= BOTTLENECK_THRESHOLDS.io) {
        return verdict(
          'io',
          'waiting',
          `${queued}; host limits were full (${names}) while ${pct(ioShareOfWork)} of each tenant's work was connect and network round trips.`,
          'The database is mostly waiting on the network: raise the per-host limit (SLUICE_HOST_LIMITS) where the host has CPU and connections to spare.',
          hostAtLimit.host,
        );
      }
      return verdict(
        'contention',
        'waiting',
        `${queued}; host limits were full (${names}), and the work is database time (${pct(1 - ioShareOfWork)} of it).`,
        'The host paces the run at its limit: raise the limit only if the database has headroom; lower it if it is saturated; shorten the migration transactions.',
        hostAtLimit.host,
      );
    }
    if (timings.executorBusyShare >= BOTTLENECK_THRESHOLDS.executorsBusy) {
      return verdict(
        'coordination',
        'waiting',
        `${queued}; the ${timings.executors} executor(s) were busy ${pct(timings.executorBusyShare)} of their ${timings.executorSlots} slots' time while no host was at its limit: the executors' in-flight window is the limit.`,
        'Add executor replicas or raise SLUICE_CONCURRENCY (the in-flight window); the database hosts have room.',
      );
    }
    if (ioShareOfWork >= BOTTLENECK_THRESHOLDS.io) {
      return verdict(
        'io',
        'waiting',
        `${queued}; executors were busy only ${pct(timings.executorBusyShare)} of their slot time and no host was at its limit, while ${pct(ioShareOfWork)} of each tenant's work was connect and network round trips: too few tenants in flight per host for I/O-bound work.`,
        'Raise concurrency per host: SLUICE_HOST_START_LIMIT (where the adaptive limit starts) and SLUICE_HOST_LIMITS; I/O-bound work overlaps well.',
      );
    }
    return verdict(
      'coordination',
      'waiting',
      `${queued}; yet executors were busy only ${pct(timings.executorBusyShare)} of their slot time and no host was at its limit: work waited while executors idled.`,
      'Check executor discovery and pulls (SLUICE_DISCOVERY_INTERVAL), ack waits and replica health; add replicas if some were down.',
    );
  }
  if (ioShareOfWork >= 0.5) {
    const host = worstHost('connectMs');
    return verdict(
      'io',
      'working',
      `Tenants were mostly working, and ${pct(ioShareOfWork)} of that work was connect and network round trips (average connect ${ms(perTenant(totals.connectMs))}, work ${ms(perTenant(working))}).`,
      'Raise concurrency (SLUICE_CONCURRENCY, SLUICE_HOST_LIMITS, executor replicas): I/O-bound work overlaps well. Running executors closer to the databases cuts the round trips.',
      timings.hosts.length > 1 ? host?.host : undefined,
    );
  }
  const host = worstHost('serverMs');
  return verdict(
    'compute',
    'working',
    `Tenants were mostly working, and ${pct(1 - ioShareOfWork)} of that work was the database executing migration SQL (${ms(perTenant(split.computeMs))} per tenant).`,
    'The migration itself is the cost: make it cheaper (batch backfills, CREATE INDEX CONCURRENTLY, avoid table rewrites), or spread it over more hosts/time.',
    timings.hosts.length > 1 ? host?.host : undefined,
  );
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
