import type { Timings } from '@sluice/contracts';
import { HostUnavailableError, LockedError, LockTimeoutError } from '@sluice/core';

/** Why an attempt was lost: lock or connection-slot contention, an unreachable host, anything else. */
export type LossCause = 'lock' | 'unavailable' | 'other';

export function lossCauseOf(error: unknown): LossCause {
  if (error instanceof LockTimeoutError || error instanceof LockedError) return 'lock';
  if (error instanceof HostUnavailableError) return error.tooManyConnections ? 'lock' : 'unavailable';
  return 'other';
}

interface Entry {
  queuedMs: number;
  lost: Record<LossCause, number>;
  workMs: number;
  /** When the last failed attempt ended, and why it failed: the wait after it is charged to that cause. */
  lastFailedAt: number | null;
  lastCause: LossCause;
}

export interface AttemptStart {
  key: string;
  /** Wall-clock ms when the delivery was picked up. */
  now: number;
  /** The task's `plannedAt` in ms since the epoch. */
  plannedAt: number;
  /** Milliseconds of [from, to] during which the host's breaker was open on this replica. */
  breakerOpenMs: (from: number, to: number) => number;
}

/**
 * Where a tenant's time went across its attempts, as seen by this replica. A delivery that ends in
 * a retry is charged (attempt time and the wait until the next delivery) to the cause of its
 * failure, so the parts of the final {@link Timings} add up to plannedAt -> finishedAt.
 *
 * Memory is bounded (oldest entries go first). A redelivery this replica has not seen (another
 * replica failed the earlier attempts, or this one restarted) counts its whole wait as queued.
 */
export class AttemptTimings {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxEntries = 50_000) {}

  /** Called when a delivery is picked up. */
  begin(start: AttemptStart): void {
    const entry = this.entries.get(start.key);
    if (entry && entry.lastFailedAt !== null) {
      entry.lost[entry.lastCause] += Math.max(0, start.now - entry.lastFailedAt);
      entry.lastFailedAt = null;
      return;
    }
    if (entry) return;
    const waited = Math.max(0, start.now - start.plannedAt);
    const unavailable = Math.min(waited, start.breakerOpenMs(start.plannedAt, start.now));
    this.remember(start.key, {
      queuedMs: waited - unavailable,
      lost: { lock: 0, unavailable, other: 0 },
      workMs: 0,
      lastFailedAt: null,
      lastCause: 'other',
    });
  }

  /** Called when a delivery ends in a retry. */
  retry(key: string, workMs: number, error: unknown, now: number): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    const cause = lossCauseOf(error);
    entry.workMs += workMs;
    entry.lost[cause] += workMs;
    entry.lastFailedAt = now;
    entry.lastCause = cause;
  }

  /** Called when a delivery settles the tenant: the accumulated parts, and the entry is forgotten. */
  settle(
    key: string,
    workMs: number,
  ): Pick<Timings, 'queuedMs' | 'lockWaitMs' | 'unavailableMs' | 'retryDelayMs' | 'workMs'> {
    const entry = this.entries.get(key);
    this.entries.delete(key);
    if (!entry) return { workMs };
    return {
      queuedMs: entry.queuedMs,
      lockWaitMs: entry.lost.lock,
      unavailableMs: entry.lost.unavailable,
      retryDelayMs: entry.lost.other,
      workMs: entry.workMs + workMs,
    };
  }

  get size(): number {
    return this.entries.size;
  }

  private remember(key: string, entry: Entry): void {
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, entry);
  }
}
