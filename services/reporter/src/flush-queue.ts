import type { Logger } from '@sluice/telemetry';

/** How long a run whose effects failed waits before it is looked at again. */
const RETRY_MS = 1_000;

/** The runs whose effects may be due, run one pass at a time. */
export interface FlushQueue {
  /** Marks a run: its effects are looked at in the next pass (at once when live). */
  mark(runId: string): void;
  /** From now on, marking a run starts a pass; resolves when the runs marked so far are flushed. */
  goLive(): Promise<void>;
  /** Resolves when no pass is running. */
  idle(): Promise<void>;
}

/**
 * One queue for every effect of the reporter. Folding a message marks its run; a pass takes the
 * marked runs and runs `flushRun` for each, one at a time, until none is marked (a run marked
 * during a pass is taken by the next one). A run whose effects throw is logged and marked again a
 * moment later. Nothing runs before `goLive` (the streams are still being replayed).
 */
export function createFlushQueue(deps: { logger: Logger; flushRun: (runId: string) => Promise<void> }): FlushQueue {
  const marked = new Set<string>();
  let live = false;
  let pass: Promise<void> | undefined;

  function mark(runId: string): void {
    marked.add(runId);
    if (live) void flush();
  }

  function flush(): Promise<void> {
    // `finally` runs as a later microtask, so `pass` is cleared only after it was set.
    pass ??= drain().finally(() => (pass = undefined));
    return pass;
  }

  async function drain(): Promise<void> {
    while (marked.size > 0) {
      const batch = [...marked];
      marked.clear();
      for (const runId of batch) {
        try {
          await deps.flushRun(runId);
        } catch (error) {
          deps.logger.warn({ err: error, runId }, 'run effects failed; trying again shortly');
          setTimeout(() => mark(runId), RETRY_MS).unref();
        }
      }
    }
  }

  return {
    mark,
    goLive() {
      live = true;
      return flush();
    },
    async idle() {
      while (pass) await pass;
    },
  };
}
