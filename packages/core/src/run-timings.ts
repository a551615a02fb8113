import type { ExecutorLoad, HostSignals, HostWhatIf, RunTimings, TenantOutcome, TimingTotals } from '@sluice/contracts';

import { BOTTLENECK_THRESHOLDS } from './bottleneck-signals.js';
import { hostWhatIf, type WorkInterval } from './limit-what-if.js';

const TIMING_KEYS = [
  'queuedMs',
  'connectMs',
  'journalMs',
  'executeMs',
  'serverMs',
  'lockWaitMs',
  'unavailableMs',
  'retryDelayMs',
  'workMs',
] as const;

export function emptyTimingTotals(): TimingTotals {
  return {
    tenants: 0,
    queuedMs: 0,
    connectMs: 0,
    journalMs: 0,
    executeMs: 0,
    serverMs: 0,
    lockWaitMs: 0,
    unavailableMs: 0,
    retryDelayMs: 0,
    workMs: 0,
  };
}

function addTimings(into: TimingTotals, timings: NonNullable<TenantOutcome['timings']>): void {
  into.tenants += 1;
  for (const key of TIMING_KEYS) into[key] += timings[key] ?? 0;
}

interface HostBook {
  totals: TimingTotals;
  samples: number;
  atLimit: number;
  limit: number | null;
  signals: SignalBook;
  /** Every `stride`-th tenant's work on the host (connect to unlock), for the what-if. */
  intervals: WorkInterval[];
  /** Tenants seen with an interval, and how many each kept interval stands for. */
  seen: number;
  stride: number;
}

/** Sums of the signals of a host's tenants that sent them (see `HostSignals`). */
interface SignalBook {
  minConnectMs: number | null;
  minJournalMs: number | null;
  tenants: number;
  roundTrips: number;
  connectJournalMs: number;
  activity: {
    samples: number;
    active: number;
    onCpu: number;
    lock: number;
    lwlock: number;
    io: number;
    client: number;
  };
  replayLagMs: number | null;
  activityUnavailable: number;
  limitMin: number | null;
  limitMax: number | null;
}

/**
 * Intervals kept per host for the what-if: enough levels, bounded memory on huge runs. Past it,
 * every other one is dropped and the stride doubles, so what is kept stays spread over the run.
 */
const MAX_INTERVALS_PER_HOST = 20_000;

/** One queue sample of a host: tasks waiting, in flight, and the host's limit. */
export interface QueueSample {
  pending: number;
  inFlight: number;
  limit: number;
}

/** Hosts listed in a run's timings, the slowest first. */
export const MAX_TIMING_HOSTS = 50;

/**
 * Where one run's time went: tenant timings summed for the run and per host, the executors that
 * worked on it (and their slots), and how often each host had work waiting with its whole limit in
 * flight. Pure and in memory; fed outcome by outcome (first outcome per tenant only).
 */
export class RunTimingBook {
  readonly totals = emptyTimingTotals();
  private readonly hosts = new Map<string, HostBook>();
  private readonly executors = new Map<string, number>();
  private readonly load = new Map<
    string,
    { tenants: number; cpu: number; loopDelayMs: number; loopBusy: number; busyTenants: number }
  >();

  add(
    outcome: Pick<TenantOutcome, 'host' | 'executorId' | 'executorSlots' | 'timings'> &
      Partial<Pick<TenantOutcome, 'signals' | 'finishedAt'>>,
  ): void {
    if (outcome.executorId && outcome.executorSlots) this.executors.set(outcome.executorId, outcome.executorSlots);
    if (!outcome.timings) return;
    addTimings(this.totals, outcome.timings);
    const signals = outcome.signals;
    if (outcome.executorId && signals?.executorCpu !== undefined) {
      const l = this.load.get(outcome.executorId) ?? {
        tenants: 0,
        cpu: 0,
        loopDelayMs: 0,
        loopBusy: 0,
        busyTenants: 0,
      };
      l.tenants += 1;
      l.cpu += signals.executorCpu;
      l.loopDelayMs += signals.loopDelayMs ?? 0;
      if (signals.loopBusy !== undefined) {
        l.loopBusy += signals.loopBusy;
        l.busyTenants += 1;
      }
      this.load.set(outcome.executorId, l);
    }
    if (!outcome.host) return;
    const book = this.host(outcome.host);
    addTimings(book.totals, outcome.timings);
    const t = outcome.timings;
    const end = outcome.finishedAt ? Date.parse(outcome.finishedAt) : Number.NaN;
    if (Number.isFinite(end) && t.totalMs !== undefined) {
      if (book.seen % book.stride === 0) book.intervals.push({ startMs: end - t.totalMs, endMs: end });
      book.seen += 1;
      if (book.intervals.length >= MAX_INTERVALS_PER_HOST) {
        book.intervals = book.intervals.filter((_, i) => i % 2 === 0);
        book.stride *= 2;
      }
    }
    if (signals) addSignals(book.signals, t, signals);
  }

  /** Records a queue sample; only hosts that have appeared in this run (or have work) count. */
  addQueueSample(host: string, sample: QueueSample): void {
    if (!this.hosts.has(host) && sample.pending === 0 && sample.inFlight === 0) return;
    const book = this.host(host);
    book.samples += 1;
    book.limit = Math.max(book.limit ?? 0, sample.limit);
    if (sample.pending > 0 && sample.limit > 0 && sample.inFlight >= sample.limit) book.atLimit += 1;
  }

  snapshot(clock: { wallMs: number; planningMs: number | null }): RunTimings {
    const slots = [...this.executors.values()].reduce((a, b) => a + b, 0);
    const capacityMs = slots * clock.wallMs;
    const hosts = [...this.hosts.entries()]
      .map(([host, book]) => ({
        host,
        ...book.totals,
        atLimitShare: book.samples > 0 ? book.atLimit / book.samples : null,
        // Little's law: slot time spent on the host's tenants over the run's time is the mean in flight.
        effectiveConcurrency: clock.wallMs > 0 ? book.totals.workMs / clock.wallMs : 0,
        limit: book.limit,
        ...(book.signals.tenants > 0 || book.signals.activityUnavailable > 0
          ? { signals: hostSignalsOf(book.signals) }
          : {}),
      }))
      .sort((a, b) => hostTime(b) - hostTime(a))
      .slice(0, MAX_TIMING_HOSTS);
    const executorLoad: ExecutorLoad[] = [...this.load.entries()]
      .map(([executorId, l]) => ({
        executorId,
        tenants: l.tenants,
        cpu: round(l.cpu / l.tenants),
        loopDelayMs: round(l.loopDelayMs / l.tenants),
        ...(l.busyTenants > 0 ? { loopBusy: round(l.loopBusy / l.busyTenants) } : {}),
      }))
      .sort((a, b) => b.cpu - a.cpu);
    return {
      wallMs: clock.wallMs,
      planningMs: clock.planningMs,
      totals: { ...this.totals },
      executors: this.executors.size,
      executorSlots: slots,
      executorBusyShare: capacityMs > 0 ? Math.min(1, this.totals.workMs / capacityMs) : 0,
      hosts,
      ...(executorLoad.length > 0 ? { executorLoad } : {}),
    };
  }

  /**
   * What a different limit would do to each host (the busiest first, at most `maxHosts`), from the
   * concurrency levels its tenants ran at. Needs outcomes with `finishedAt` and `totalMs`.
   */
  whatIf(wallMs: number, maxHosts = 5): HostWhatIf[] {
    const slots = [...this.executors.values()].reduce((a, b) => a + b, 0);
    return [...this.hosts.entries()]
      .sort(([, a], [, b]) => hostTime(b.totals) - hostTime(a.totals))
      .slice(0, maxHosts)
      .map(([host, book]) =>
        hostWhatIf({
          host,
          intervals: book.intervals,
          wallMs,
          slotCap: slots,
          scale: book.stride,
          saturated: isSaturated(book.signals),
        }),
      )
      .filter((w): w is HostWhatIf => w !== undefined);
  }

  private host(host: string): HostBook {
    let book = this.hosts.get(host);
    if (!book) {
      book = {
        totals: emptyTimingTotals(),
        samples: 0,
        atLimit: 0,
        limit: null,
        signals: emptySignals(),
        intervals: [],
        seen: 0,
        stride: 1,
      };
      this.hosts.set(host, book);
    }
    return book;
  }
}

function hostTime(t: TimingTotals): number {
  return t.queuedMs + t.lockWaitMs + t.unavailableMs + t.retryDelayMs + t.connectMs + t.journalMs + t.executeMs;
}

function emptySignals(): SignalBook {
  return {
    minConnectMs: null,
    minJournalMs: null,
    tenants: 0,
    roundTrips: 0,
    connectJournalMs: 0,
    activity: { samples: 0, active: 0, onCpu: 0, lock: 0, lwlock: 0, io: 0, client: 0 },
    replayLagMs: null,
    activityUnavailable: 0,
    limitMin: null,
    limitMax: null,
  };
}

const minOf = (a: number | null, b: number): number => (a === null ? b : Math.min(a, b));

function addSignals(
  into: SignalBook,
  t: NonNullable<TenantOutcome['timings']>,
  s: NonNullable<TenantOutcome['signals']>,
): void {
  if (s.roundTrips !== undefined && t.connectMs !== undefined && t.journalMs !== undefined) {
    into.tenants += 1;
    into.roundTrips += s.roundTrips;
    into.connectJournalMs += t.connectMs + t.journalMs;
    into.minConnectMs = minOf(into.minConnectMs, t.connectMs);
    // The journal read is one simple round trip when nothing needed the lock, the common case.
    if (t.journalMs > 0) into.minJournalMs = minOf(into.minJournalMs, t.journalMs);
  }
  if (s.hostLimit !== undefined) {
    into.limitMin = minOf(into.limitMin, s.hostLimit);
    into.limitMax = Math.max(into.limitMax ?? 0, s.hostLimit);
  }
  if (s.hostActivityUnavailable) into.activityUnavailable += 1;
  const a = s.hostActivity;
  if (a) {
    into.activity.samples += 1;
    into.activity.active += a.active;
    into.activity.onCpu += a.onCpu;
    into.activity.lock += a.lock;
    into.activity.lwlock += a.lwlock;
    into.activity.io += a.io;
    into.activity.client += a.client;
    if (a.replayLagMs !== undefined) into.replayLagMs = Math.max(into.replayLagMs ?? 0, a.replayLagMs);
  }
}

/** The classifier's test of a saturated host (latency inflation and its size), on one host's signals. */
function isSaturated(b: SignalBook): boolean {
  const s = hostSignalsOf(b);
  const baseline = (s.baselineConnectMs ?? 0) + (s.baselineRttMs ?? 0);
  return (
    s.latencyInflation !== null &&
    s.latencyInflation >= BOTTLENECK_THRESHOLDS.hostInflation &&
    baseline * (s.latencyInflation - 1) >= BOTTLENECK_THRESHOLDS.hostInflationMs
  );
}

function hostSignalsOf(b: SignalBook): HostSignals {
  const rtt = b.minJournalMs ?? 0;
  const connect = b.minConnectMs ?? 0;
  const floor = b.tenants * connect + b.roundTrips * rtt;
  const baseline = b.tenants * (connect + rtt);
  const n = b.activity.samples;
  const mean = (v: number): number => round(v / n);
  return {
    baselineRttMs: b.minJournalMs === null ? null : round(b.minJournalMs),
    baselineConnectMs: b.minConnectMs === null ? null : round(b.minConnectMs),
    tenants: b.tenants,
    roundTrips: b.roundTrips,
    networkFloorMs: round(floor),
    latencyInflation: baseline > 0 ? round(b.connectJournalMs / baseline) : null,
    activity:
      n > 0
        ? {
            samples: n,
            active: mean(b.activity.active),
            onCpu: mean(b.activity.onCpu),
            lock: mean(b.activity.lock),
            lwlock: mean(b.activity.lwlock),
            io: mean(b.activity.io),
            client: mean(b.activity.client),
            replayLagMs: b.replayLagMs === null ? null : round(b.replayLagMs),
          }
        : null,
    activityUnavailable: b.activityUnavailable,
    limitRange: b.limitMin === null || b.limitMax === null ? null : [b.limitMin, b.limitMax],
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
