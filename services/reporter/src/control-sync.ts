import type { RunControlStore } from '@sluice/bus';

import type { RunState } from './run-state.js';

/**
 * Writes each run's control state to the `sluice_run_control` bucket (what executors obey) when
 * it moved past what this reporter wrote last; writes are compare-and-set by sequence, so replicas
 * never move a run backwards. Remembers when each state was written: parked tasks are released
 * only once executors can know it.
 */
export function createControlSync(deps: { controls?: RunControlStore; now: () => number }) {
  const { controls, now } = deps;
  /** Control state last written per run (its seq), and when. */
  const written = new Map<string, { seq: number; at: number }>();

  return {
    /** Writes the run's control state if it moved (runs known only from a stray control are left alone). */
    async sync(run: RunState): Promise<void> {
      if (!controls || !(run.accepted || run.completed)) return;
      const seq = run.control.seq;
      if (seq <= (written.get(run.runId)?.seq ?? -1)) return;
      await controls.save(run.control);
      written.set(run.runId, { seq, at: now() });
    },
    /**
     * When the run's current control state reached the bucket: undefined while it has not (or a
     * later control is still to be written); 0 when no bucket is kept (executors are not told).
     */
    writtenAt(run: RunState): number | undefined {
      if (!controls) return 0;
      const last = written.get(run.runId);
      return last && last.seq >= run.control.seq ? last.at : undefined;
    },
  };
}

export type ControlSync = ReturnType<typeof createControlSync>;
