import type { PubAck } from '@nats-io/jetstream';
import { outcomeMsgId, outcomeSubject, STREAMS, type TenantOutcome, TenantOutcomeSchema } from '@sluice/contracts';

import type { Bus } from './bus.js';
import { decodeJson } from './codec.js';
import { readSubject } from './lifecycle/subject-reader.js';
import { publishReliably } from './publish.js';

/**
 * Publishes a tenant's outcome on its run's subject under the tenant's outcome id, retrying: the
 * first outcome of a tenant is the one stored, whoever publishes it (planner, executor, reporter).
 */
export function publishOutcome(bus: Bus, outcome: TenantOutcome, options: { attempts?: number } = {}): Promise<PubAck> {
  return publishReliably(bus, outcomeSubject(outcome.runId), outcome, {
    msgId: outcomeMsgId(outcome.runId, outcome.tenantId),
    ...options,
  });
}

/**
 * The outcome that counts for each tenant of a run — its first terminal one — in arrival order,
 * read from the outcomes stream (one pass over the run's outcomes; malformed ones are skipped).
 */
export async function readCountedOutcomes(bus: Bus, runId: string): Promise<TenantOutcome[]> {
  const first = new Map<string, TenantOutcome>();
  await readSubject(bus, STREAMS.outcomes.name, outcomeSubject(runId), (msg) => {
    let parsed;
    try {
      parsed = TenantOutcomeSchema.safeParse(decodeJson(msg.data));
    } catch {
      return;
    }
    if (parsed.success && !first.has(parsed.data.tenantId)) first.set(parsed.data.tenantId, parsed.data);
  });
  return [...first.values()];
}
