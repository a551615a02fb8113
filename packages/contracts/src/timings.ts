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
    }),
  ),
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
 * - `external`: a host's breaker was open / the host unreachable, or the registry throttled.
 */
export const BOTTLENECK_KINDS = ['io', 'contention', 'coordination', 'compute', 'external'] as const;
export const BottleneckKindSchema = z.enum(BOTTLENECK_KINDS);
export type BottleneckKind = z.infer<typeof BottleneckKindSchema>;

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
});
export type Bottleneck = z.infer<typeof BottleneckSchema>;
