import { type MigrateRequest, MigrateRequestSchema, RunIdSchema } from '@sluice/contracts';
import { type MigrationSet, resolveTarget } from '@sluice/core';
import type { z } from 'zod';

export type Validation =
  { ok: true; request: MigrateRequest; targetVersion: number } | { ok: false; runId?: string; reasons: string[] };

const MAX_REASONS = 20;

function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, MAX_REASONS).map((issue) => {
    const where = issue.path.length > 0 ? issue.path.join('.') : 'request';
    return `${where}: ${issue.message}`.slice(0, 500);
  });
}

/** Checks a decoded request against the contract and the migration set this planner serves. */
export function validateRequest(raw: unknown, set: MigrationSet): Validation {
  const parsed = MigrateRequestSchema.safeParse(raw);
  const candidateRunId = (raw as { runId?: unknown } | null)?.runId;
  const runId = RunIdSchema.safeParse(candidateRunId).success ? (candidateRunId as string) : undefined;
  if (!parsed.success) return { ok: false, ...(runId ? { runId } : {}), reasons: describeIssues(parsed.error) };
  // An audit reads journals to check the fleet state: it applies nothing and trusts nothing.
  if (parsed.data.audit && (parsed.data.dryRun !== true || parsed.data.trust === 'fleet-state'))
    return {
      ok: false,
      runId: parsed.data.runId,
      reasons: ['audit: an audit run is a dry run ("dryRun": true) and cannot trust the fleet state'],
    };
  try {
    // A rollback's target is per tenant (the version the undone run found there): 0 on the bus.
    const { target } = parsed.data;
    return { ok: true, request: parsed.data, targetVersion: target === undefined ? 0 : resolveTarget(set, target) };
  } catch (error) {
    return { ok: false, runId: parsed.data.runId, reasons: [(error as Error).message] };
  }
}

/** A stable fingerprint of what a request asks for: same runId with another fingerprint is a conflict. */
export function requestFingerprint(request: MigrateRequest, targetVersion: number): string {
  return JSON.stringify({
    t: targetVersion,
    s: request.tenants ?? null,
    d: request.dryRun ?? false,
    r: request.rollout ?? null,
    h: request.maxPerHost ?? null,
    ...(request.rollback ? { b: request.rollback } : {}),
    ...(request.allowChangedDown ? { c: true } : {}),
    // Only when asked, so the fingerprints of runs claimed before the field existed stay the same.
    ...(request.trust === 'fleet-state' ? { tr: request.trust } : {}),
    ...(request.audit ? { au: request.audit } : {}),
  });
}
