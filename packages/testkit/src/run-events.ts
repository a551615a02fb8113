import type { RunLostEvent } from '@sluice/contracts';

/** A run's `lost` event as the reporter publishes it (tests of what the CLI and the API show). */
export function lostRunEvent(runId: string, extra: Partial<RunLostEvent> = {}): RunLostEvent {
  return {
    runId,
    reason: 'store_lost',
    lastKnown: { status: 'running', total: 40, settled: 8, targetVersion: 3, acceptedAt: '2026-11-30T03:45:22.551Z' },
    recover: `sluice runs recover ${runId}`,
    detectedAt: '2026-11-30T03:45:24.269Z',
    ...extra,
  };
}
