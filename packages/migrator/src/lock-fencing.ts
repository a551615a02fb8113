import { createHash } from 'node:crypto';

import type pg from 'pg';

/**
 * The lease a migration session works under: one delivery of one task. JetStream's ack wait is
 * the lease's term — a task is delivered again only when its holder showed no sign of life for
 * that long — so a newer delivery of the same task owns the tenant, and the older one is stale.
 */
export interface MigrationLease {
  /** The task's key: a hash of run and tenant (never the ids themselves, never a secret). */
  taskKey: string;
  /** The task message's sequence in its stream (a task published again gets a newer one). */
  streamSeq: number;
  /** The delivery count of that message. */
  deliveryCount: number;
}

/** What a session may do about a migration lock held by someone else. */
export interface LockFence {
  /** This session's own lease. */
  lease: MigrationLease;
  /** The task consumers' ack wait: a holder idle for longer has lost its lease whatever it runs. */
  ackWaitMs: number;
  /** Told when a stale holder was terminated (for the executor's log). */
  onFenced?: (event: FencedHolder) => void;
}

/** A stale holder this session terminated before taking the lock. */
export interface FencedHolder {
  pid: number;
  applicationName: string;
  /** Both idle longer than the ack wait; `redelivered`: an older delivery of this task, `idle`: another task's session. */
  reason: 'redelivered' | 'idle';
  idleMs: number;
}

const PREFIX = 'sluice-executor:';
/** Postgres keeps 63 bytes of application_name. */
const MAX_NAME = 63;
const LEASE_SUFFIX = /:([0-9a-f]{10})\.(\d+)\.(\d+)$/;

/** The task key in a session name: 40 bits of sha256 over run and tenant. */
export function taskLeaseKey(runId: string, tenantId: string): string {
  return createHash('sha256').update(`${runId}\n${tenantId}`).digest('hex').slice(0, 10);
}

/**
 * The `application_name` of a migration session: `sluice-executor:<executorId>:<taskKey>.<seq>.<delivery>`,
 * the executor id shortened so the lease always fits in 63 characters.
 */
export function leaseApplicationName(executorId: string, lease: MigrationLease): string {
  const suffix = `:${lease.taskKey}.${lease.streamSeq}.${lease.deliveryCount}`;
  const room = Math.max(0, MAX_NAME - PREFIX.length - suffix.length);
  return `${PREFIX}${executorId.replace(/[^\x21-\x7e]/g, '_').slice(0, room)}${suffix}`;
}

/** The lease a session names, or undefined for any other session (people, other tools, old executors). */
export function parseLeaseApplicationName(name: string): MigrationLease | undefined {
  if (!name.startsWith(PREFIX)) return undefined;
  const m = LEASE_SUFFIX.exec(name);
  if (!m) return undefined;
  return { taskKey: m[1]!, streamSeq: Number(m[2]), deliveryCount: Number(m[3]) };
}

/** Whether a holder of the lock has lost its lease to `ours`; the reason, or undefined to leave it be. */
export function staleHolderReason(
  holder: { applicationName: string; state: string | null; idleMs: number },
  fence: Pick<LockFence, 'lease' | 'ackWaitMs'>,
): FencedHolder['reason'] | undefined {
  const theirs = parseLeaseApplicationName(holder.applicationName);
  // Only an executor's migration session is ever terminated; anything else holding the lock is a person or a tool.
  if (!theirs) return undefined;
  // An active statement is left to finish (its transaction commits or fails on its own). A live
  // executor sends its next statement within milliseconds, so a session waiting on its client for
  // a whole ack wait belongs to a process that stopped (frozen, partitioned) — never to a slow one
  // (a starved CPU delays it by seconds: a shorter bound fenced live executors under load).
  if (holder.state === 'active' || holder.idleMs < fence.ackWaitMs) return undefined;
  const ours = fence.lease;
  const older =
    theirs.taskKey === ours.taskKey &&
    (theirs.streamSeq < ours.streamSeq ||
      (theirs.streamSeq === ours.streamSeq && theirs.deliveryCount < ours.deliveryCount));
  return older ? 'redelivered' : 'idle';
}

/**
 * The lock is held: terminates its holder when its lease has expired (see {@link staleHolderReason}),
 * waits for it to go (PostgreSQL rolls its open transaction back and releases its locks), and tries
 * the lock again. True when this session now holds the lock.
 */
export async function takeOverExpiredLock(client: pg.ClientBase, lockKey: string, fence: LockFence): Promise<boolean> {
  const holders = await client.query<{ pid: number; application_name: string; state: string | null; idle_ms: number }>(
    `SELECT a.pid, a.application_name, a.state,
            (extract(epoch FROM clock_timestamp() - a.state_change) * 1000)::float8 AS idle_ms
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = ((${lockKey}::bigint >> 32) & 4294967295)::oid
        AND l.objid = (${lockKey}::bigint & 4294967295)::oid
        AND a.pid <> pg_backend_pid()`,
  );
  const holder = holders.rows[0];
  if (!holder) {
    // Released in between: try once more.
    return tryLock(client, lockKey);
  }
  const idleMs = Number(holder.idle_ms);
  const reason = staleHolderReason({ applicationName: holder.application_name, state: holder.state, idleMs }, fence);
  if (!reason) return false;
  // Waits up to 5 s for the backend to exit, so its session lock is gone when we try.
  await client.query('SELECT pg_terminate_backend($1, 5000)', [holder.pid]);
  const taken = await tryLock(client, lockKey);
  if (taken) fence.onFenced?.({ pid: holder.pid, applicationName: holder.application_name, reason, idleMs });
  return taken;
}

async function tryLock(client: pg.ClientBase, lockKey: string): Promise<boolean> {
  const r = await client.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${lockKey}) AS locked`);
  return r.rows[0]?.locked === true;
}
