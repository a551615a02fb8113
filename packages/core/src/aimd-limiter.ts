/** Why a limiter cut its limit. */
export type OverloadSignal =
  'lock_timeout' | 'too_many_connections' | 'connection_error' | 'latency' | 'host_saturated' | 'replay_lag';

export interface AimdOptions {
  /**
   * Where a host starts. The executor starts at the host's configured limit: the operator's
   * limit already says what the host can take, and a ramp (even TCP's doubling) leaves slots
   * idle for the first windows of every run on every replica.
   */
  initial: number;
  /** The configured ceiling; never exceeded. */
  max: number;
  /** Never below this. */
  min?: number;
  /** Multiplier on overload (0.5 halves). */
  decrease?: number;
  /** After a cut, further signals are ignored this long, so one burst of errors is one cut. */
  cooldownMs?: number;
  /** A probe slower than `latencyFactor` × the host's baseline counts as overload... */
  latencyFactor?: number;
  /** ...when it is also this many ms above it (below, scheduling noise dominates). */
  latencyMarginMs?: number;
  /** Probes needed before latency is judged at all (the first ones set the baseline). */
  warmupProbes?: number;
  /**
   * With the caller's own delay known (the executor's event-loop delay), a probe only this many
   * ms above the baseline (and `latencyFactor` × it) already means a saturated host, provided the
   * caller's delay explains less than half of the rise: a fast local host queueing on its CPU
   * never reaches `latencyMarginMs`.
   */
  saturationMarginMs?: number;
}

/**
 * Additive-increase / multiplicative-decrease concurrency limit for one database host, as TCP
 * does for a flow: every clean completion adds 1/limit (so after a cut the limit grows back by
 * about one per window of completions), an overload signal cuts it by `decrease`. Each executor
 * replica runs its own limiter per host; like TCP flows sharing a link, their sum backs off
 * together, and the host's hard cap (the consumer's max_ack_pending) bounds them all.
 *
 * Latency is judged on a probe, a fixed cheap statement every task makes (the journal read),
 * never on a task's whole duration: a slow migration file or a cold connection says nothing
 * about the host, while the same small query taking several times its usual time means the
 * host is queueing work. Pure: the caller passes time.
 */
export class AimdLimiter {
  private value: number;
  private readonly min: number;
  private max: number;
  private readonly decrease: number;
  private readonly cooldownMs: number;
  private readonly latencyFactor: number;
  private readonly latencyMarginMs: number;
  private readonly warmupProbes: number;
  private readonly saturationMarginMs: number;
  private lastCutAt = Number.NEGATIVE_INFINITY;
  private probes = 0;
  /** Exponentially weighted probe latency, and the lowest it has been (the host's unloaded pace). */
  private ewmaMs: number | null = null;
  private baselineMs: number | null = null;
  cuts = 0;
  lastSignal: OverloadSignal | null = null;

  constructor(options: AimdOptions) {
    this.min = Math.max(1, options.min ?? 1);
    this.max = Math.max(this.min, options.max);
    this.value = Math.min(this.max, Math.max(this.min, options.initial));
    this.decrease = options.decrease ?? 0.5;
    this.cooldownMs = options.cooldownMs ?? 2_000;
    this.latencyFactor = options.latencyFactor ?? 3;
    this.latencyMarginMs = options.latencyMarginMs ?? 50;
    this.warmupProbes = options.warmupProbes ?? 5;
    this.saturationMarginMs = options.saturationMarginMs ?? 10;
  }

  /** The whole number of tasks that may run now. */
  get limit(): number {
    return Math.floor(this.value);
  }

  /**
   * A clean completion. `probeMs`: how long its probe (the journal read) took, or undefined
   * when it made none (nothing is judged then). `ownDelayMs`: the caller's own delay when the
   * probe ran (event-loop delay), when it measures it.
   */
  onSuccess(probeMs: number | undefined, now: number, ownDelayMs?: number): void {
    const signal = probeMs === undefined ? null : this.probeShowsOverload(probeMs, ownDelayMs);
    if (signal) {
      this.onOverload(signal, now);
      return;
    }
    this.value = Math.min(this.max, this.value + 1 / Math.max(1, this.limit));
  }

  /** An overload signal: cut, unless a cut happened within the cooldown. */
  onOverload(signal: OverloadSignal, now: number): void {
    this.lastSignal = signal;
    if (now - this.lastCutAt < this.cooldownMs) return;
    this.lastCutAt = now;
    this.cuts += 1;
    this.value = Math.max(this.min, this.value * this.decrease);
    // The queueing that raised latency drains after a cut; measure afresh.
    if (signal === 'latency' || signal === 'host_saturated') this.ewmaMs = this.baselineMs;
  }

  /** Lowers or raises the ceiling (the configured host limit changed). */
  setMax(max: number): void {
    this.max = Math.max(this.min, max);
    this.value = Math.min(this.value, this.max);
  }

  private probeShowsOverload(probeMs: number, ownDelayMs: number | undefined): OverloadSignal | null {
    this.probes += 1;
    this.ewmaMs = this.ewmaMs === null ? probeMs : this.ewmaMs * 0.8 + probeMs * 0.2;
    this.baselineMs = this.baselineMs === null ? this.ewmaMs : Math.min(this.baselineMs, this.ewmaMs);
    if (this.probes <= this.warmupProbes) return null;
    if (this.ewmaMs <= this.baselineMs * this.latencyFactor) return null;
    const rise = this.ewmaMs - this.baselineMs;
    if (rise > this.latencyMarginMs) return 'latency';
    if (ownDelayMs !== undefined && rise > this.saturationMarginMs && ownDelayMs < rise / 2) return 'host_saturated';
    return null;
  }
}
