import type { ControlSync } from './control-sync.js';
import type { RunState } from './run-state.js';
import type { TaskReleaser } from './task-releaser.js';

/** Executors learn a control state from a KV watch: this long after it is written, they obey it. */
const CONTROL_SETTLE_MS = 200;

/**
 * Releases a run's parked tasks (or skips them) by the state executors obey: only once that state
 * is in the bucket (a control folded meanwhile brings another pass), and a moment later, as
 * executors learn it from a watch — a task released before that would only be parked again.
 */
export function createParkedRelease(deps: { controlSync: ControlSync; releaser: TaskReleaser; now: () => number }) {
  const { controlSync, releaser, now } = deps;
  return {
    async release(run: RunState): Promise<void> {
      if (run.tenants.parkedCount === 0) return;
      const writtenAt = controlSync.writtenAt(run);
      if (writtenAt === undefined) return;
      const wait = writtenAt + CONTROL_SETTLE_MS - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await releaser.releaseParked(run);
    },
  };
}
