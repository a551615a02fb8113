import { type KV, Kvm } from '@nats-io/kv';
import { BUCKETS } from '@sluice/contracts';

import type { Bus } from './bus.js';
import { decodeJson, encodeJson } from './codec.js';

/** A run's claim on its runId: who asked for what, and how far planning got. */
export interface RunClaim {
  runId: string;
  /** Identifies the request's content: the same runId with other content is a conflict. */
  fingerprint: string;
  state: 'planning' | 'planned';
  claimedAt: string;
}

export type ClaimResult =
  /** First time this runId is seen: plan it. */
  | { kind: 'new'; record: RunClaim }
  /** Seen, but planning never finished (a planner died): plan it again, idempotently. */
  | { kind: 'resume'; record: RunClaim }
  /** Already planned: the request is a repeat and changes nothing. */
  | { kind: 'duplicate'; record: RunClaim }
  /** The runId is taken by a request with other content. */
  | { kind: 'conflict'; record: RunClaim };

/**
 * The claims of every runId ever accepted, in the `sluice_runs` KV bucket: the idempotency keys of
 * requests. A claim is made before a run is planned and marked once it is.
 */
export interface RunClaims {
  claim(runId: string, fingerprint: string): Promise<ClaimResult>;
  markPlanned(runId: string): Promise<void>;
  get(runId: string): Promise<RunClaim | undefined>;
}

export async function openRunClaims(bus: Bus, options: { replicas?: number } = {}): Promise<RunClaims> {
  const kv: KV = await new Kvm(bus.nc).create(BUCKETS.runClaims, { history: 1, replicas: options.replicas ?? 1 });
  const get = async (runId: string): Promise<RunClaim | undefined> => {
    const entry = await kv.get(runId);
    if (!entry || entry.operation !== 'PUT') return undefined;
    return decodeJson(entry.value) as RunClaim;
  };
  return {
    get,
    async claim(runId, fingerprint) {
      const record: RunClaim = { runId, fingerprint, state: 'planning', claimedAt: new Date().toISOString() };
      try {
        await kv.create(runId, encodeJson(record));
        return { kind: 'new', record };
      } catch (error) {
        const existing = await get(runId);
        if (!existing) throw error;
        if (existing.fingerprint !== fingerprint) return { kind: 'conflict', record: existing };
        return existing.state === 'planned'
          ? { kind: 'duplicate', record: existing }
          : { kind: 'resume', record: existing };
      }
    },
    async markPlanned(runId) {
      const existing = await get(runId);
      if (!existing) throw new Error(`run ${runId} has no claim`);
      await kv.put(runId, encodeJson({ ...existing, state: 'planned' }));
    },
  };
}
