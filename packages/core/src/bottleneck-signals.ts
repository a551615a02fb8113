import type { RunTimings, TimingTotals } from '@sluice/contracts';

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
  /** Connect + journal latency over its baseline from which a host counts as saturated... */
  hostInflation: 3,
  /** ...when that is also this many ms per tenant above the baseline (below, it is noise). */
  hostInflationMs: 5,
  /** An executor using this share of one core (its event loop's) is saturated... */
  executorCpu: 0.8,
  /**
   * ...or, on a machine that cannot give it a core, this share with its event loop this late on
   * average: it wants more CPU than it gets.
   */
  executorCpuStarved: 0.35,
  executorLoopDelayMs: 75,
  /**
   * ...or with its loop that late, or with that share of a core, while the hosts' active sessions
   * mostly wait on the client (`ClientWrite`: the database has rows ready and the executor does
   * not read them): the host says so directly, however late the loop reads on average (52 ms at
   * 72% of a core in a run the loop rule alone missed).
   */
  clientWaitShare: 0.5,
  /** ...or with its loop this late whatever else: it cannot serve its tenants in time. */
  executorLoopDelayAloneMs: 150,
  /**
   * ...or with its event loop running callbacks this share of the time, whatever its CPU (a loop
   * busy all the time on a core it shares gets less than one) or its delay (many short callbacks
   * keep it low: CI saw 105% of a core at 0 ms). The bottleneck scenarios here: 0.97–1 for a
   * saturated executor, at most 0.41 for every other constraint.
   */
  executorLoopBusy: 0.9,
  /**
   * With signals, a network floor this large a share of the work is I/O-bound when the host at its
   * limit shows no saturation (its latency near baseline says it has headroom).
   */
  ioWithHeadroom: 0.5,
  /** Share of the work spent queueing inside a saturated host that makes it, not the executors, hold the slots. */
  queueingHoldsSlots: 0.5,
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

/** What the signals say about the work part of tenant time (see `HostSignals`). */
export interface WorkSignals {
  /** Whether enough tenants sent round trips and baselines for the split below to mean anything. */
  known: boolean;
  /** The part of connect + journal + network time the baseline round trip × round trips explains. */
  networkMs: number;
  /** The rest of it: queueing inside a busy host or a busy executor. */
  queueingMs: number;
  /** The host with the highest latency inflation, and that inflation. */
  worstHost?: { host: string; inflation: number; excessMsPerTenant: number };
  /** The busiest executor's CPU share of one core, its mean event-loop delay and utilization. */
  executor?: { executorId: string; cpu: number; loopDelayMs: number; loopBusy?: number };
  /** Of the hosts' active sessions in `pg_stat_activity` samples, the share waiting on the client. */
  clientWaitShare?: number;
}

/**
 * Which of two hosts' latency rise matters more: among hosts inflated past the threshold, the one
 * that costs its tenants the most ms (a 5× rise on a 1 ms round trip is noise next to a 4× rise
 * on a 40 ms connect); otherwise the more inflated.
 */
function worse(
  a: { inflation: number; excessMsPerTenant: number },
  b: { inflation: number; excessMsPerTenant: number },
): boolean {
  const over = (h: typeof a) => h.inflation >= BOTTLENECK_THRESHOLDS.hostInflation;
  if (over(a) !== over(b)) return over(a);
  return over(a) ? a.excessMsPerTenant > b.excessMsPerTenant : a.inflation > b.inflation;
}

/** Splits the I/O part of the work into network (baseline × round trips) and queueing. */
export function workSignals(timings: RunTimings): WorkSignals {
  const split = splitTime(timings.totals);
  let floor = 0;
  let covered = 0;
  let worstHost: WorkSignals['worstHost'];
  let active = 0;
  let client = 0;
  for (const h of timings.hosts) {
    const s = h.signals;
    if (s?.activity) {
      active += s.activity.active * s.activity.samples;
      client += s.activity.client * s.activity.samples;
    }
    if (!s || s.tenants === 0) continue;
    covered += s.tenants;
    // Scaled to all of the host's tenants (a few may have come from executors without signals).
    floor += s.networkFloorMs * (h.tenants / s.tenants);
    const baseline = (s.baselineConnectMs ?? 0) + (s.baselineRttMs ?? 0);
    if (s.latencyInflation !== null && baseline > 0) {
      const candidate = {
        host: h.host,
        inflation: s.latencyInflation,
        excessMsPerTenant: baseline * (s.latencyInflation - 1),
      };
      if (!worstHost || worse(candidate, worstHost)) worstHost = candidate;
    }
  }
  const top = timings.executorLoad?.[0];
  const executor = top
    ? {
        executorId: top.executorId,
        cpu: top.cpu,
        loopDelayMs: top.loopDelayMs,
        ...(top.loopBusy !== undefined ? { loopBusy: top.loopBusy } : {}),
      }
    : undefined;
  const known = covered >= timings.totals.tenants / 2 && covered > 0;
  const networkMs = known ? Math.min(split.ioMs, floor) : split.ioMs;
  return {
    known,
    networkMs,
    queueingMs: split.ioMs - networkMs,
    ...(worstHost ? { worstHost } : {}),
    ...(executor ? { executor } : {}),
    ...(active > 0 ? { clientWaitShare: client / active } : {}),
  };
}
