import type { RunTimings, TenantOutcome, TimingTotals } from '@sluice/contracts';

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
}

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

  add(outcome: Pick<TenantOutcome, 'host' | 'executorId' | 'executorSlots' | 'timings'>): void {
    if (outcome.executorId && outcome.executorSlots) this.executors.set(outcome.executorId, outcome.executorSlots);
    if (!outcome.timings) return;
    addTimings(this.totals, outcome.timings);
    if (outcome.host) addTimings(this.host(outcome.host).totals, outcome.timings);
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
      }))
      .sort((a, b) => hostTime(b) - hostTime(a))
      .slice(0, MAX_TIMING_HOSTS);
    return {
      wallMs: clock.wallMs,
      planningMs: clock.planningMs,
      totals: { ...this.totals },
      executors: this.executors.size,
      executorSlots: slots,
      executorBusyShare: capacityMs > 0 ? Math.min(1, this.totals.workMs / capacityMs) : 0,
      hosts,
    };
  }

  private host(host: string): HostBook {
    let book = this.hosts.get(host);
    if (!book) {
      book = { totals: emptyTimingTotals(), samples: 0, atLimit: 0, limit: null };
      this.hosts.set(host, book);
    }
    return book;
  }
}

function hostTime(t: TimingTotals): number {
  return t.queuedMs + t.lockWaitMs + t.unavailableMs + t.retryDelayMs + t.connectMs + t.journalMs + t.executeMs;
}
