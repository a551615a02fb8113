import type { Bus } from '@sluice/bus';
import { rolloutMsgId, runEventSubject } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { RunState } from './run-state.js';
import { rolloutVerdict } from './run-verdicts.js';

/** A decision not seen back on the stream after this long is published again (a lost message). */
const DECISION_RETRY_MS = 30_000;

/**
 * Publishes a staged rollout's decisions as control events: `promote` once every canary
 * succeeded, `stop` once a threshold is passed. Each carries a deterministic message id, so
 * replicas and repeats publish it once.
 */
export function createRolloutDecisions(deps: { bus: Bus; logger: Logger; now: () => number }) {
  const { bus, logger, now } = deps;
  /** Decisions published (action and when), not published again for a while. */
  const decided = new Map<string, { action: string; at: number }>();

  return {
    async decide(run: RunState): Promise<void> {
      const verdict = rolloutVerdict(run);
      if (!verdict) return;
      const last = decided.get(run.runId);
      if (last?.action === verdict.action && now() - last.at <= DECISION_RETRY_MS) return;
      decided.set(run.runId, { action: verdict.action, at: now() });
      await bus.publish(
        runEventSubject(run.runId, 'control'),
        {
          runId: run.runId,
          action: verdict.action,
          ...(verdict.action === 'stop' ? { reason: verdict.reason } : {}),
          requestedBy: 'sluice-reporter (rollout)',
          at: new Date(now()).toISOString(),
        },
        { msgId: rolloutMsgId(run.runId, verdict.action) },
      );
      logger.info(
        { runId: run.runId, ...verdict },
        verdict.action === 'promote' ? 'canaries succeeded; fleet promoted' : 'rollout stopped the run',
      );
    },
  };
}
