import { type Bus, type JsMsg, publishOutcome, StreamFullError } from '@sluice/bus';
import type { TenantOutcome } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

/**
 * Publishes a tenant's outcome; while the outcomes stream is full (`StreamFullError`), holds it:
 * the task stays in progress (so it is not redelivered and nobody counts its deliveries), the
 * attempt is repeated with backoff until the stream has room, and the error is logged once a
 * `logEveryMs`. A full stream then stops the executor taking new work once its slots are all
 * holding — backpressure instead of migrations whose record cannot be kept. Other errors throw.
 */
export async function publishOutcomeHolding(
  bus: Bus,
  msg: JsMsg,
  outcome: TenantOutcome,
  logger: Logger,
  options: { ackWaitMs: number; logEveryMs?: number },
): Promise<void> {
  const maxDelayMs = Math.max(200, Math.min(10_000, options.ackWaitMs / 2));
  const logEveryMs = options.logEveryMs ?? 30_000;
  let delay = 200;
  let heldSince: number | undefined;
  let loggedAt = -Infinity;
  for (;;) {
    try {
      await publishOutcome(bus, outcome);
      if (heldSince !== undefined)
        logger.warn(
          { runId: outcome.runId, tenantId: outcome.tenantId, heldMs: Date.now() - heldSince },
          'outcome published: the outcomes stream has room again',
        );
      return;
    } catch (error) {
      if (!(error instanceof StreamFullError)) throw error;
      heldSince ??= Date.now();
      if (Date.now() - loggedAt >= logEveryMs) {
        loggedAt = Date.now();
        logger.error(
          { runId: outcome.runId, tenantId: outcome.tenantId, err: error, heldMs: Date.now() - heldSince },
          'outcomes stream is full: holding the outcome, not taking new work',
        );
      }
      msg.working();
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, maxDelayMs);
    }
  }
}
