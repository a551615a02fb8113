import { type Bus, listHostConsumers } from '@sluice/bus';
import type { QueueSample } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

/** One host's task queue at one moment, from its consumer. */
export interface HostQueueSample extends QueueSample {
  host: string;
}

/** Every host's queue, listed at `at` (epoch ms). */
export interface QueueSampleSet {
  at: number;
  hosts: HostQueueSample[];
}

export interface QueueSamplerOptions {
  bus: Pick<Bus, 'jsm'>;
  logger: Logger;
  /** Time between two listings. */
  intervalMs: number;
  /**
   * Whether there is work to watch (runs going). While it says no and the last sample showed no
   * work anywhere, nothing is listed. Always sampling when absent.
   */
  active?: () => boolean;
  now?: () => number;
}

export interface QueueSampler {
  /** The last sample set, if any. */
  latest(): QueueSampleSet | undefined;
  /** Calls `listener` with each sample set from now on; returns the function that stops it. */
  onSample(listener: (sample: QueueSampleSet) => void): () => void;
  /** Takes a sample now (as the loop does) and returns it. */
  sampleNow(): Promise<QueueSampleSet>;
  stop(): Promise<void>;
}

/** True when the host had work waiting and its whole limit in flight. */
export function atLimit(sample: QueueSample): boolean {
  return sample.pending > 0 && sample.limit > 0 && sample.inFlight >= sample.limit;
}

/**
 * Samples every database host's task queue — tasks waiting (`num_pending`), delivered and not yet
 * acknowledged (`num_ack_pending`, the tenants in flight over all executors) and the host's limit
 * (`max_ack_pending`) — from the host consumers, one paged listing per interval. Keeps the latest
 * set for the gauges and hands each set to listeners (a run's at-limit share). It listens to no
 * message, so its cost is one API call per interval (a page per 256 hosts), and none while idle.
 */
export function startQueueSampler(options: QueueSamplerOptions): QueueSampler {
  const { bus, logger } = options;
  const now = options.now ?? Date.now;
  const listeners = new Set<(sample: QueueSampleSet) => void>();
  const abort = new AbortController();
  let latest: QueueSampleSet | undefined;
  let stopped = false;

  async function sampleNow(): Promise<QueueSampleSet> {
    const hosts = (await listHostConsumers(bus.jsm)).map((c) => ({
      host: c.hostKey,
      pending: c.pending,
      inFlight: c.ackPending,
      limit: c.maxAckPending,
    }));
    const sample = { at: now(), hosts };
    latest = sample;
    for (const listener of listeners) {
      try {
        listener(sample);
      } catch (error) {
        logger.warn({ err: error }, 'queue sample listener failed');
      }
    }
    return sample;
  }

  const hadWork = (): boolean => latest === undefined || latest.hosts.some((h) => h.pending > 0 || h.inFlight > 0);

  const loop = (async () => {
    while (!stopped) {
      if (options.active?.() ?? true) {
        await sampleNow().catch((error: unknown) => logger.warn({ err: error }, 'queue sample failed'));
      } else if (hadWork()) {
        // The work just ended: one more sample, so the gauges come down to what is left.
        await sampleNow().catch((error: unknown) => logger.warn({ err: error }, 'queue sample failed'));
      }
      await sleep(options.intervalMs, abort.signal);
    }
  })();

  return {
    latest: () => latest,
    onSample(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    sampleNow,
    async stop() {
      stopped = true;
      abort.abort();
      await loop;
      listeners.clear();
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
