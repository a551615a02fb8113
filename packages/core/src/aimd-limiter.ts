/** Why a limiter cut its limit. */
export type OverloadSignal = 'lock_timeout' | 'too_many_connections' | 'connection_error' | 'latency';

export interface AimdOptions {
  /** Where a host starts (low: a host earns concurrency). */
  initial: number;
  /** The configured ceiling; never exceeded. */
  max: number;
  /** Never below this. */
  min?: number;
  /** Multiplier on overload (0.5 halves). */
  decrease?: number;
  /** After a cut, further signals are ignored this long, so one burst of errors is one cut. */
  cooldownMs?: number;
  /** Latency above `latencyFactor` × the best recent latency counts as overload. */
  latencyFactor?: number;
}

/**
 * Additive-increase / multiplicative-decrease concurrency limit for one database host, as TCP
 * does for a flow: every clean completion adds 1/limit (so the limit grows by about one per
 * window of completions), an overload signal cuts it by `decrease`. Each executor replica runs
 * its own limiter per host; like TCP flows sharing a link, their sum backs off together, and the
 * host's hard cap (the consumer's max_ack_pending) bounds them all. Pure: the caller passes time.
 */
export class AimdLimiter {
  private value: number;
  private readonly min: number;
  private max: number;
  private readonly decrease: number;
  private readonly cooldownMs: number;
  private readonly latencyFactor: number;
  private lastCutAt = Number.NEGATIVE_INFINITY;
  /** Exponentially weighted latency, and the lowest it has been (the host's unloaded pace). */
  private ewmaMs: number | null = null;
  private bestMs: number | null = null;
  cuts = 0;
  lastSignal: OverloadSignal | null = null;

  constructor(options: AimdOptions) {
    this.min = Math.max(1, options.min ?? 1);
    this.max = Math.max(this.min, options.max);
    this.value = Math.min(this.max, Math.max(this.min, options.initial));
    this.decrease = options.decrease ?? 0.5;
    this.cooldownMs = options.cooldownMs ?? 2_000;
    this.latencyFactor = options.latencyFactor ?? 3;
  }

  /** The whole number of tasks that may run now. */
  get limit(): number {
    return Math.floor(this.value);
  }

  /** A clean completion that took `latencyMs`. */
  onSuccess(latencyMs: number, now: number): void {
    this.ewmaMs = this.ewmaMs === null ? latencyMs : this.ewmaMs * 0.8 + latencyMs * 0.2;
    this.bestMs = this.bestMs === null ? this.ewmaMs : Math.min(this.bestMs, this.ewmaMs);
    // Rising latency with no error: the host is queueing work. Ignore small absolute values,
    // where scheduling noise dominates.
    if (this.ewmaMs > this.bestMs * this.latencyFactor && this.ewmaMs - this.bestMs > 50) {
      this.onOverload('latency', now);
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
    if (signal === 'latency') this.ewmaMs = this.bestMs;
  }

  /** Lowers or raises the ceiling (the configured host limit changed). */
  setMax(max: number): void {
    this.max = Math.max(this.min, max);
    this.value = Math.min(this.value, this.max);
  }
}
