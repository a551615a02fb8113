import { z } from 'zod';

/** Sums of tenant {@link Timings} over a run or a host, in milliseconds. */
export const TimingTotalsSchema = z.object({
  tenants: z.number().int().nonnegative(),
  queuedMs: z.number().nonnegative(),
  connectMs: z.number().nonnegative(),
  journalMs: z.number().nonnegative(),
  executeMs: z.number().nonnegative(),
  serverMs: z.number().nonnegative(),
  lockWaitMs: z.number().nonnegative(),
  unavailableMs: z.number().nonnegative(),
  retryDelayMs: z.number().nonnegative(),
  workMs: z.number().nonnegative(),
});
export type TimingTotals = z.infer<typeof TimingTotalsSchema>;

/**
 * What separates a saturated host from a slow network, per host: its baselines (the fastest connect
 * and the fastest journal read seen, the latter one simple round trip), the round trips its tenants
 * made, and how far connect and journal latency rose above the baselines.
 */
export const HostSignalsSchema = z.object({
  /** The fastest journal read: one simple round trip to the host, unloaded. */
  baselineRttMs: z.number().nonnegative().nullable(),
  /** The fastest connect (handshake, authentication, backend start). */
  baselineConnectMs: z.number().nonnegative().nullable(),
  /** Tenants that reported their round trips, and the round trips they made (connect excluded). */
  tenants: z.number().int().nonnegative(),
  roundTrips: z.number().int().nonnegative(),
  /** Σ (baseline connect + round trips × baseline round trip): the time the network alone explains. */
  networkFloorMs: z.number().nonnegative(),
  /** Mean connect + journal latency over its baseline (1 = as fast as unloaded). */
  latencyInflation: z.number().nonnegative().nullable(),
  /** Means over `pg_stat_activity` samples, or null when none was taken or readable. */
  activity: z
    .object({
      samples: z.number().int().nonnegative(),
      active: z.number().nonnegative(),
      onCpu: z.number().nonnegative(),
      lock: z.number().nonnegative(),
      lwlock: z.number().nonnegative(),
      io: z.number().nonnegative(),
      client: z.number().nonnegative(),
      /** The largest replay lag seen on the host's replicas. */
      replayLagMs: z.number().nonnegative().nullable(),
    })
    .nullable(),
  /** Samples asked for that the role could not read (no `pg_read_all_stats`). */
  activityUnavailable: z.number().int().nonnegative(),
  /** The executors' adaptive limits for the host, lowest and highest seen at settle time. */
  limitRange: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).nullable(),
});
export type HostSignals = z.infer<typeof HostSignalsSchema>;

/** One executor's load while it worked on the run (means over the outcomes it settled). */
export const ExecutorLoadSchema = z.object({
  executorId: z.string(),
  tenants: z.number().int().nonnegative(),
  /** CPU as a share of one core (the event loop runs on one). */
  cpu: z.number().nonnegative(),
  /** Mean event-loop delay. */
  loopDelayMs: z.number().nonnegative(),
  /** Mean share of the time its event loop ran callbacks (absent from executors that do not send it). */
  loopBusy: z.number().min(0).max(1).optional(),
});
export type ExecutorLoad = z.infer<typeof ExecutorLoadSchema>;

/** Where a run's time went: totals for the run and per host, and how busy the executors were. */
export const RunTimingsSchema = z.object({
  /** Accepted to last outcome (or now, while running). */
  wallMs: z.number().nonnegative(),
  /** Accepted to planned: how long the planner took to publish every task. */
  planningMs: z.number().nonnegative().nullable(),
  totals: TimingTotalsSchema,
  /** Executors that reported outcomes, their slots, and their busy share of slots x wall time. */
  executors: z.number().int().nonnegative(),
  executorSlots: z.number().int().nonnegative(),
  executorBusyShare: z.number().nonnegative(),
  hosts: z.array(
    TimingTotalsSchema.extend({
      host: z.string(),
      /** Share of queue samples in which the host had work waiting and its whole limit in flight. */
      atLimitShare: z.number().min(0).max(1).nullable(),
      /**
       * Effective concurrency: the host's mean tenants in flight over the run (its tenants' slot
       * time over the run's wall time), to read against `limit`.
       */
      effectiveConcurrency: z.number().nonnegative().optional(),
      /** The host's limit (the highest sampled while the run was active), when sampled. */
      limit: z.number().int().nonnegative().nullable().optional(),
      signals: HostSignalsSchema.optional(),
    }),
  ),
  /** Each executor's CPU and event-loop delay, the busiest first (executors that sent them). */
  executorLoad: z.array(ExecutorLoadSchema).optional(),
});
export type RunTimings = z.infer<typeof RunTimingsSchema>;

/**
 * The dominant constraint of a run, in the terms of the design this system comes from:
 * - `io`: waiting on I/O (connect and network latency dominate) — raise concurrency;
 * - `contention`: lock waits, a full connection table, a host at its limit — lower per-host
 *   concurrency or shorten transactions;
 * - `coordination`: executors saturated or idle while work is queued, or the planner too slow to
 *   feed them — add replicas or raise the in-flight window;
 * - `compute`: SQL execution dominates — the migration itself is expensive;
 * - `external`: a host's breaker was open / the host unreachable, or the registry throttled;
 * - `hostSaturated`: a database host's CPU or I/O at capacity (latency inflated over its baseline)
 *   — do not raise the limit: lower it, spread the run, make the migration cheaper;
 * - `executorsSaturated`: the executors' CPU is the limit — add replicas or CPU.
 */
export const BOTTLENECK_KINDS = [
  'io',
  'contention',
  'coordination',
  'compute',
  'external',
  'hostSaturated',
  'executorsSaturated',
] as const;
export const BottleneckKindSchema = z.enum(BOTTLENECK_KINDS);
export type BottleneckKind = z.infer<typeof BottleneckKindSchema>;

/**
 * What a different limit would do to one host: its throughput at the concurrency levels it passed
 * through (Little's law), the Universal Scalability Law fitted to them when there are enough, the
 * limit at which throughput peaks and the run time predicted there.
 */
export const HostWhatIfSchema = z.object({
  host: z.string(),
  /** `usl`: fitted; `observed`: too few levels for a fit, the best level seen. */
  model: z.enum(['usl', 'observed']),
  points: z.array(
    z.object({
      concurrency: z.number().nonnegative(),
      /** Tenants per second. */
      throughput: z.number().nonnegative(),
      tenants: z.number().int().nonnegative(),
    }),
  ),
  /** USL coefficients: contention σ and coherency κ (usl only). */
  sigma: z.number().optional(),
  kappa: z.number().optional(),
  /** Mean tenants in flight while the host had work. */
  observedConcurrency: z.number().nonnegative(),
  /** The limit at which throughput peaks (capped at twice the highest level seen when still rising). */
  peakLimit: z.number().int().positive(),
  /** Whether throughput was still rising at the highest level (the peak may be higher). */
  stillRising: z.boolean(),
  peakThroughput: z.number().nonnegative(),
  /** The run's wall time, and the one predicted with every host at its peak limit. */
  wallMs: z.number().nonnegative(),
  predictedWallMs: z.number().nonnegative(),
});
export type HostWhatIf = z.infer<typeof HostWhatIfSchema>;

export const BottleneckSchema = z.object({
  kind: BottleneckKindSchema,
  /** Human name of the kind: `waiting on I/O`, `contention`, ... */
  label: z.string(),
  /** Was the run mostly `working` (tenant work) or `waiting` (queue, locks, retries)? */
  mode: z.enum(['working', 'waiting']),
  /** One sentence with the figures behind the verdict. */
  summary: z.string(),
  /** What to change. */
  lever: z.string(),
  /** The host the verdict is about, when it is one host. */
  host: z.string().optional(),
  /** The figures the verdict was drawn from (shares are 0..1, times in ms). */
  figures: z.record(z.string(), z.number()),
  /** Per host (the busiest first): the limit at which it peaks and the run time predicted there. */
  whatIf: z.array(HostWhatIfSchema).optional(),
  /** Signals the verdict could not use, said plainly (e.g. pg_stat_activity unreadable). */
  notes: z.array(z.string()).optional(),
});
export type Bottleneck = z.infer<typeof BottleneckSchema>;
