import type { TenantLedgerEntry, TenantTask } from '@sluice/contracts';

/**
 * Where the current copy of an unsettled tenant's task is. `taskSeq` names the copy (its sequence
 * in SLUICE_TASKS); `entrySeq` is the ledger entry that announced it, or parked it — the basis of
 * the message id when it is published again, so every replica derives the same one.
 */
export type TaskCopy =
  /** In the work queue (or with an executor); `missingAt`: when it was first found gone. */
  | { kind: 'queued'; taskSeq: number; entrySeq: number; missingAt?: number }
  /** Acknowledged by an executor without starting the tenant; waits for the run to go on. */
  | { kind: 'parked'; taskSeq: number; entrySeq: number; reason: 'paused' | 'canary'; task: TenantTask }
  /** Being settled by the reporter (a `skipped` outcome is on its way). */
  | { kind: 'skipping' };

/** What the reporter knows of one tenant that has no terminal outcome yet, from the task ledger. */
export interface TrackedTenant {
  tenantId: string;
  host: string;
  /** Ledger sequence of the latest entry carrying the full task (to publish it again). */
  payloadSeq: number;
  copy: TaskCopy;
  /** When the current copy was published, parked, or last seen alive (ms). */
  since: number;
}

/**
 * The unsettled tenants of one run, folded from its task ledger. Pure. A tenant leaves the
 * tracker when its first terminal outcome arrives and never comes back.
 *
 * Entries of one tenant are written by different processes (planner, executors, reporters), so
 * ledger order is not the order things happened in: an executor can park a copy before the
 * entry announcing that copy is written. Entries are therefore matched by the copy they name
 * (`taskSeq`): news about the current copy always applies; otherwise the later entry wins.
 */
export class TenantTracker {
  private readonly tenants = new Map<string, TrackedTenant>();
  private readonly settled = new Set<string>();
  /** Tenants whose copy is parked: looked at on every event of the run, so kept apart. */
  private readonly parkedIds = new Set<string>();

  private put(tenant: TrackedTenant): void {
    this.tenants.set(tenant.tenantId, tenant);
    if (tenant.copy.kind === 'parked') this.parkedIds.add(tenant.tenantId);
    else this.parkedIds.delete(tenant.tenantId);
  }

  /** How many tenants are parked. */
  get parkedCount(): number {
    return this.parkedIds.size;
  }

  get size(): number {
    return this.tenants.size;
  }

  get(tenantId: string): TrackedTenant | undefined {
    return this.tenants.get(tenantId);
  }

  values(): IterableIterator<TrackedTenant> {
    return this.tenants.values();
  }

  /** A terminal outcome arrived: the tenant is done, whatever the ledger says later. */
  settle(tenantId: string): void {
    this.settled.add(tenantId);
    this.tenants.delete(tenantId);
    this.parkedIds.delete(tenantId);
  }

  /** Folds one ledger entry (`seq`: its ledger sequence, `at`: its time in ms). False when it changed nothing. */
  apply(entry: TenantLedgerEntry, seq: number, at: number): boolean {
    const tenantId = entry.kind === 'republished' ? entry.tenantId : entry.task.tenantId;
    if (this.settled.has(tenantId)) return false;
    const current = this.tenants.get(tenantId);
    const copy = current?.copy.kind === 'skipping' ? undefined : current?.copy;
    switch (entry.kind) {
      case 'planned':
        // The first thing known of a tenant; anything else already known is later news.
        if (current) return false;
        this.put({
          tenantId,
          host: entry.task.host,
          payloadSeq: seq,
          copy: { kind: 'queued', taskSeq: entry.taskSeq, entrySeq: seq },
          since: at,
        });
        return true;
      case 'parked': {
        if (current?.copy.kind === 'skipping') return false;
        const aboutCurrent = copy?.kind === 'queued' && copy.taskSeq === entry.taskSeq;
        if (copy && !aboutCurrent && (copy.taskSeq === entry.taskSeq || seq <= copy.entrySeq)) return false;
        this.put({
          tenantId,
          host: entry.task.host,
          payloadSeq: seq,
          copy: { kind: 'parked', taskSeq: entry.taskSeq, entrySeq: seq, reason: entry.reason, task: entry.task },
          since: at,
        });
        return true;
      }
      case 'republished': {
        // Without an entry holding the task there is nothing to publish again later.
        if (!current || !copy || current.copy.kind === 'skipping') return false;
        const replacesCurrent = copy.entrySeq === entry.supersedes;
        if (!replacesCurrent && (copy.taskSeq === entry.taskSeq || seq <= copy.entrySeq)) return false;
        this.put({ ...current, copy: { kind: 'queued', taskSeq: entry.taskSeq, entrySeq: seq }, since: at });
        return true;
      }
    }
  }

  /** The tenant is being skipped by the reporter (its parked task will not be published again). */
  markSkipping(tenantId: string, at: number): void {
    const t = this.tenants.get(tenantId);
    if (t) this.put({ ...t, copy: { kind: 'skipping' }, since: at });
  }

  /** The tenant's queued task was found in the work queue: not lost, look again later. */
  markAlive(tenantId: string, at: number): void {
    const t = this.tenants.get(tenantId);
    if (!t) return;
    t.since = at;
    if (t.copy.kind === 'queued') delete t.copy.missingAt;
  }

  /** The tenant's queued task is gone from the work queue; returns since when it has been seen gone. */
  markMissing(tenantId: string, at: number): number {
    const t = this.tenants.get(tenantId);
    if (!t || t.copy.kind !== 'queued') return at;
    t.copy.missingAt ??= at;
    return t.copy.missingAt;
  }

  /** Parked tenants, in ledger order. */
  parked(): Array<TrackedTenant & { copy: { kind: 'parked' } }> {
    return [...this.parkedIds]
      .map((id) => this.tenants.get(id))
      .filter((t): t is TrackedTenant & { copy: { kind: 'parked' } } => t?.copy.kind === 'parked');
  }

  /** Tenants whose queued copy (or skip) has shown no result for `afterMs`: maybe lost. */
  overdue(now: number, afterMs: number, limit: number): TrackedTenant[] {
    const out: TrackedTenant[] = [];
    for (const t of this.tenants.values()) {
      if (t.copy.kind !== 'parked' && now - t.since >= afterMs) out.push(t);
      if (out.length >= limit) break;
    }
    return out;
  }
}
