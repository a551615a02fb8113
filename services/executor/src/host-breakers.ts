import { EventEmitter } from 'node:events';

import { HostUnavailableError } from '@sluice/core';
import CircuitBreaker from 'opossum';

export interface BreakerOptions {
  /** Percentage of host-level failures in the rolling window that opens the breaker. */
  errorThresholdPercentage: number;
  /** Calls in the window before the breaker may open at all. */
  volumeThreshold: number;
  /** How long an open breaker waits before it lets one probe through (half-open). */
  resetTimeoutMs: number;
  /** The rolling window. */
  rollingWindowMs: number;
}

export type BreakerState = 'closed' | 'open' | 'halfOpen';

const BUCKETS = 10;

/**
 * A circuit breaker per database host (opossum). Only host-level failures count
 * ({@link HostUnavailableError}: refused or reset connections, class 08, 53300, 57P01/57P03,
 * connect timeouts); a tenant's SQL error passes through as a success for the breaker, so one
 * broken tenant never takes its host's neighbours down. One timer rotates the statistics of every
 * breaker (opossum's `rotateBucketController`), so thousands of hosts cost one interval.
 */
export class HostBreakers {
  private readonly breakers = new Map<string, CircuitBreaker<[() => Promise<unknown>], unknown>>();
  private readonly rotation = new EventEmitter();
  private readonly timer: NodeJS.Timeout;
  /** Per host: when its breaker opened (while open) and its recent open intervals, for time accounting. */
  private readonly openedAt = new Map<string, number>();
  private readonly openSpans = new Map<string, Array<[number, number]>>();

  constructor(
    private readonly options: BreakerOptions,
    private readonly onStateChange: (host: string, state: BreakerState) => void = () => undefined,
  ) {
    this.rotation.setMaxListeners(0);
    this.timer = setInterval(
      () => this.rotation.emit('rotate'),
      Math.max(10, Math.floor(options.rollingWindowMs / BUCKETS)),
    );
    this.timer.unref();
  }

  private breaker(host: string): CircuitBreaker<[() => Promise<unknown>], unknown> {
    let breaker = this.breakers.get(host);
    if (!breaker) {
      breaker = new CircuitBreaker((work: () => Promise<unknown>) => work(), {
        name: host,
        timeout: false,
        errorThresholdPercentage: this.options.errorThresholdPercentage,
        volumeThreshold: this.options.volumeThreshold,
        resetTimeout: this.options.resetTimeoutMs,
        rollingCountTimeout: this.options.rollingWindowMs,
        rollingCountBuckets: BUCKETS,
        rotateBucketController: this.rotation,
        enableSnapshots: false,
        // true = "not a failure": everything but a host-level error.
        errorFilter: (error: unknown) => !(error instanceof HostUnavailableError),
      });
      breaker.on('open', () => {
        if (!this.openedAt.has(host)) this.openedAt.set(host, Date.now());
        this.onStateChange(host, 'open');
      });
      breaker.on('halfOpen', () => this.onStateChange(host, 'halfOpen'));
      breaker.on('close', () => {
        this.closeSpan(host);
        this.onStateChange(host, 'closed');
      });
      this.breakers.set(host, breaker);
    }
    return breaker;
  }

  /** Runs work on a host through its breaker; an open breaker fails fast with a transient, host-level error. */
  async run<T>(host: string, work: () => Promise<T>): Promise<T> {
    const breaker = this.breaker(host);
    try {
      return (await breaker.fire(work)) as T;
    } catch (error) {
      if ((error as { code?: string }).code === 'EOPENBREAKER') {
        throw new HostUnavailableError(
          `${host}: circuit breaker is open after repeated host failures`,
          host,
          undefined,
          { cause: error },
        );
      }
      throw error;
    }
  }

  state(host: string): BreakerState {
    const breaker = this.breakers.get(host);
    if (!breaker) return 'closed';
    if (breaker.halfOpen) return 'halfOpen';
    return breaker.opened ? 'open' : 'closed';
  }

  /**
   * Milliseconds of [from, to] (epoch ms) during which the host's breaker was open or half-open
   * here: the time its queued tasks waited for the host rather than for a slot.
   */
  openMs(host: string, from: number, to: number): number {
    let total = 0;
    const spans = [...(this.openSpans.get(host) ?? [])];
    const since = this.openedAt.get(host);
    if (since !== undefined) spans.push([since, to]);
    for (const [start, end] of spans) total += Math.max(0, Math.min(end, to) - Math.max(start, from));
    return total;
  }

  private closeSpan(host: string): void {
    const since = this.openedAt.get(host);
    if (since === undefined) return;
    this.openedAt.delete(host);
    const spans = this.openSpans.get(host) ?? [];
    spans.push([since, Date.now()]);
    if (spans.length > 32) spans.shift();
    this.openSpans.set(host, spans);
  }

  /** Resolves when the host's breaker lets calls (or a probe) through again. */
  async whenPassable(host: string, signal?: AbortSignal): Promise<void> {
    const breaker = this.breakers.get(host);
    if (!breaker || !breaker.opened || breaker.halfOpen) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        breaker.off('halfOpen', done);
        breaker.off('close', done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      breaker.once('halfOpen', done);
      breaker.once('close', done);
      signal?.addEventListener('abort', done);
    });
  }

  shutdown(): void {
    clearInterval(this.timer);
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
  }
}
