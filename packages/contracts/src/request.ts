import { z } from 'zod';

import { LintModeSchema, LintReportSchema } from './lint.js';

/** A run id: the idempotency key of a request (the same runId twice is one run). */
export const RunIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'runId must be 1-64 characters of A-Z, a-z, 0-9, "_" or "-"');

/** A migration version: the numeric prefix of a migration file. */
export const VersionSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** `"latest"`, or a version in the migration set (a number, or a string of digits). */
export const TargetSchema = z.union(
  [
    z.literal('latest'),
    VersionSchema,
    z
      .string()
      .regex(/^\d{1,15}$/, 'target must be "latest" or a version number')
      .transform((s) => Number(s)),
  ],
  // Without a message of its own a union says only "Invalid input".
  { error: 'must be "latest" or a version number (a whole number from 0, or a string of up to 15 digits)' },
);
export type Target = 'latest' | number;

/**
 * A tenantId: 1–200 printable ASCII characters (`!` to `~`), no whitespace or control characters,
 * no `*` or `>`. It travels in message ids (`Nats-Msg-Id` headers, where CR/LF are refused) and
 * must never look like a subject wildcard; a registry row whose id breaks the rule is that row's
 * `invalid_tenant` outcome.
 */
export const TenantIdSchema = z
  .string()
  .min(1, 'tenantId must not be empty')
  .max(200, 'tenantId must be at most 200 characters')
  .regex(/^[\x21-\x7e]*$/, 'tenantId must be printable ASCII without spaces or control characters')
  .regex(/^[^*>]*$/, 'tenantId must not contain * or >');

/** Whether a value is a usable tenantId (see {@link TenantIdSchema}). */
export function isTenantId(value: unknown): value is string {
  return TenantIdSchema.safeParse(value).success;
}

const TagMapSchema = z
  .record(z.string().min(1).max(100), z.string().max(200))
  .refine((tags) => Object.keys(tags).length > 0 && Object.keys(tags).length <= 32, {
    message: 'tags must name 1 to 32 tags',
  });

const IdsSelectorSchema = z.strictObject({ ids: z.array(TenantIdSchema).min(1).max(10_000) });

/**
 * Tag names a request may select on. A name starting with `$` or holding `.` would be an operator
 * or a path in a MongoDB query (the adapter can only drop it, which would select more tenants than
 * asked); control characters are never a tag name.
 */
const isControlChar = (ch: string): boolean => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f;
const RequestTagMapSchema = TagMapSchema.refine(
  (tags) => Object.keys(tags).every((k) => !k.startsWith('$') && !k.includes('.') && ![...k].some(isControlChar)),
  {
    message: 'tag names must not start with "$" or contain "." or control characters',
  },
);

/** Says what is wrong with a selector, in place of a union's bare "Invalid input". */
function selectorProblem(input: unknown, tags: z.ZodType): string {
  const shape = 'must be {"ids": [tenantId, …]} or {"tags": {name: value, …}}';
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return shape;
  const keys = Object.keys(input);
  if (keys.includes('ids') && keys.includes('tags')) return 'takes "ids" or "tags", not both';
  const branch = keys.includes('ids')
    ? IdsSelectorSchema
    : keys.includes('tags')
      ? z.strictObject({ tags })
      : undefined;
  const issue = branch?.safeParse(input).error?.issues[0];
  if (!issue) return shape;
  return `${issue.path.map(String).join('.')}: ${issue.message}`;
}

function selectorSchema(tags: z.ZodType<Record<string, string>>) {
  return z.union([IdsSelectorSchema, z.strictObject({ tags })], {
    error: (issue) => selectorProblem(issue.input, tags),
  });
}

/** Which tenants a run covers. Absent: every active tenant. */
export const TenantSelectorSchema = selectorSchema(TagMapSchema);
export type TenantSelector = z.infer<typeof TenantSelectorSchema>;
/**
 * The selector a new request may carry: tag names are also checked (see `RequestTagMapSchema`).
 * Events keep {@link TenantSelectorSchema}, so runs accepted before the check still read back.
 */
export const RequestTenantSelectorSchema = selectorSchema(RequestTagMapSchema);

/**
 * A staged rollout: `canary` tenants are migrated first and the rest of the fleet waits until
 * every canary has succeeded; the run stops (remaining tenants `skipped`, status `failed`) once
 * failures pass `maxFailures` or `maxFailureRate`. Every field is optional.
 */
export const RolloutSchema = z.strictObject({
  /** Tenants migrated before the fleet (the first ones the registry returns). */
  canary: z.number().int().min(0).max(10_000).optional(),
  /** The run stops once more than this many tenants have failed. */
  maxFailures: z.number().int().min(0).optional(),
  /**
   * The run stops once the failed share of settled tenants exceeds this (judged once
   * `ceil(1 / rate)` tenants have settled), or failures exceed this share of the total.
   */
  maxFailureRate: z.number().min(0).max(1).optional(),
});
export type Rollout = z.infer<typeof RolloutSchema>;

/** How a run treats tenants the fleet state says are current: `verified` (default) reads every journal. */
export const TRUST_MODES = ['verified', 'fleet-state'] as const;
export const TrustModeSchema = z.enum(TRUST_MODES);
export type TrustMode = z.infer<typeof TrustModeSchema>;

/** What a fleet-state audit run does with the journals it reads. */
export const AUDIT_KINDS = ['verify', 'rebuild'] as const;
export const AuditKindSchema = z.enum(AUDIT_KINDS);
export type AuditKind = z.infer<typeof AuditKindSchema>;

/**
 * Undo one run: each tenant it changed goes back to the version it found there (its down files,
 * newest first). Tenants changed again by a later run are reported and left alone unless `force`.
 */
export const RollbackSchema = z.strictObject({
  /** The run to undo. */
  runId: RunIdSchema,
  /** Also undo versions a later run applied on top of the run's. */
  force: z.boolean().optional(),
});
export type Rollback = z.infer<typeof RollbackSchema>;

/** The fields of a request on `sluice.requests.migrate`; {@link MigrateRequestSchema} adds the rules across them. */
const MigrateRequestFields = z.strictObject({
  runId: RunIdSchema,
  /** Required unless the request is a `rollback`. A target below a tenant's version rolls it back. */
  target: TargetSchema.optional(),
  /** Undo what an earlier run did, tenant by tenant, instead of going to a target. */
  rollback: RollbackSchema.optional(),
  /** Run down files that changed since their up file ran (refused as drift otherwise). */
  allowChangedDown: z.boolean().optional(),
  tenants: RequestTenantSelectorSchema.optional(),
  dryRun: z.boolean().optional(),
  /** Who asked (free text, shown in reports). */
  requestedBy: z.string().max(200).optional(),
  /** Lowers the concurrency limit of every host this run touches (never raises it above the configured one). */
  maxPerHost: z.number().int().min(1).max(1024).optional(),
  /** Staged rollout: canaries first, failure thresholds that stop the run. */
  rollout: RolloutSchema.optional(),
  /**
   * What lint errors in the migration set do: `error` (default) rejects the request, `warn` runs it
   * anyway with the findings in `accepted` and the report. A dry run is never rejected for lint.
   */
  lint: LintModeSchema.optional(),
  /**
   * `fleet-state`: tenants whose fleet record shows the target applied with this run's set digest
   * and status `current` are settled `upToDate` from that record, with no task and no connection.
   * Default `verified`: every tenant's journal is read (a database restored from an old backup is
   * caught only then).
   */
  trust: TrustModeSchema.optional(),
  /**
   * A fleet-state audit (a dry run; never trusted): `verify` compares every journal with the
   * tenant's fleet record and corrects the record, `rebuild` writes records afresh after the
   * fleet state was lost. `sluice fleet verify|rebuild` sends these.
   */
  audit: AuditKindSchema.optional(),
});

/** The payload on `sluice.requests.migrate`: a `target`, or a `rollback` of an earlier run. */
export const MigrateRequestSchema = MigrateRequestFields.check((ctx) => {
  const { target, rollback } = ctx.value;
  // A rollback's targets come from the tenants' journals: it reads every one of them.
  if (rollback !== undefined && (ctx.value.trust === 'fleet-state' || ctx.value.audit !== undefined))
    ctx.issues.push({
      code: 'custom',
      path: ['rollback'],
      message: 'a rollback reads every tenant\'s journal; it takes neither trust: "fleet-state" nor audit',
      input: ctx.value,
    });
  if (target === undefined && rollback === undefined)
    ctx.issues.push({
      code: 'custom',
      path: ['target'],
      message: 'target is required (or a rollback)',
      input: ctx.value,
    });
  if (target !== undefined && rollback !== undefined)
    ctx.issues.push({
      code: 'custom',
      path: ['rollback'],
      message: 'a rollback takes no target: each tenant goes back to the version the run found',
      input: ctx.value,
    });
});
export type MigrateRequest = z.output<typeof MigrateRequestSchema>;
export type MigrateRequestInput = z.input<typeof MigrateRequestSchema>;

/** The payload on `sluice.requests.rejected`. */
export const RejectedEventSchema = z.object({
  /** The request's runId, when it was usable. */
  runId: z.string().optional(),
  /**
   * Absent for a migration request. Otherwise the subject of the message rejected: a control
   * event on `sluice.runs.<runId>.control` that is malformed or names no run (by the reporter).
   */
  subject: z.string().optional(),
  reasons: z.array(z.string()).min(1),
  /** Why, as a code, when it is one a program acts on: `lint` (the migration set has lint errors). */
  reason: z.enum(['lint']).optional(),
  /** With `reason: "lint"`: the set's lint report (the errors that blocked the run among its findings). */
  lint: LintReportSchema.optional(),
  rejectedAt: z.string(),
});
export type RejectedEvent = z.infer<typeof RejectedEventSchema>;

/** The message id of a migration request (`request:<runId>`): the same request sent twice is stored once. */
export function requestMsgId(runId: string): string {
  return `request:${runId}`;
}

/** True for a string that is a valid run id. */
export function isRunId(value: string): boolean {
  return RunIdSchema.safeParse(value).success;
}
