import { type Bus, publishOnce } from '@sluice/bus';
import { runEventMsgId, runEventSubject } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { RunBook } from './run-book.js';
import type { RunTraces } from './run-trace.js';

/**
 * Publishes a run's `completed` event once all its tenants have settled (or its planning failed):
 * only if the run's subject has none yet, so of replicas racing, one publishes. The run's
 * completion span is recorded by the one that did.
 */
export function createCompletion(deps: { bus: Bus; logger: Logger; book: RunBook; traces: RunTraces }) {
  const { bus, logger, book, traces } = deps;
  /** Completions published or found, not yet folded back from the stream. */
  const completing = new Set<string>();

  return {
    /** True when the run is over or ending here: no other effect applies to it. */
    isClosing(runId: string): boolean {
      return book.get(runId)?.completed !== undefined || completing.has(runId);
    },
    /** Publishes the run's completion when it is due; true when it was due. */
    async completeIfDue(runId: string): Promise<boolean> {
      const run = book.get(runId);
      const completion = book.completionDue(runId);
      if (!run || !completion) return false;
      if (run.accepted?.traceId) completion.traceId ??= run.accepted.traceId;
      const recordTrace = traces.prepareCompletion(runId);
      completing.add(runId);
      let published: boolean;
      try {
        ({ published } = await publishOnce(bus, runEventSubject(runId, 'completed'), completion, {
          msgId: runEventMsgId(runId, 'completed'),
        }));
      } catch (error) {
        completing.delete(runId);
        throw error;
      }
      if (published) {
        book.onCompleted(completion);
        recordTrace(completion);
        logger.info(
          { runId, status: completion.status, counts: completion.counts, durationMs: completion.durationMs },
          'run completed',
        );
      } else {
        logger.info({ runId }, 'run already completed by another reporter');
      }
      return true;
    },
    /** The run's `completed` event came back on the stream (ours or another replica's). */
    onCompleted(runId: string): void {
      completing.delete(runId);
    },
  };
}

export type Completion = ReturnType<typeof createCompletion>;
