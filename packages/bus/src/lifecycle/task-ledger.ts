import { type JetStreamManager, type PubAck, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { LEDGER_STREAM, ledgerEntryMsgId, ledgerSubject, type TaskLedgerEntry } from '@sluice/contracts';

import type { Bus } from '../bus.js';
import { publishReliably } from '../publish.js';

const DAY_NS = 24 * 3600 * 1e9;
const MINUTE_NS = 60 * 1e9;

/**
 * Creates the task ledger stream if it is missing (idempotent, safe to race). Limits retention
 * like the outcomes: a run's ledger lives as long as its outcomes do.
 */
export async function ensureLedgerStream(
  jsm: JetStreamManager,
  options: { replicas?: number; retentionDays?: number } = {},
): Promise<void> {
  try {
    await jsm.streams.info(LEDGER_STREAM.name);
    return;
  } catch {
    // missing: create it below
  }
  try {
    await jsm.streams.add({
      name: LEDGER_STREAM.name,
      subjects: [...LEDGER_STREAM.subjects],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: options.replicas ?? 1,
      max_age: (options.retentionDays ?? 7) * DAY_NS,
      duplicate_window: 10 * MINUTE_NS,
    });
  } catch (error) {
    await jsm.streams.info(LEDGER_STREAM.name).catch(() => {
      throw error;
    });
  }
}

/**
 * Appends an entry to a run's task ledger, under the message id its content gives it
 * (`ledgerEntryMsgId`), so a repeat (another replica, a retry) is a no-op.
 */
export function appendLedger(
  bus: Bus,
  runId: string,
  entry: TaskLedgerEntry,
  options: { attempts?: number } = {},
): Promise<PubAck> {
  return publishReliably(bus, ledgerSubject(runId), entry, { msgId: ledgerEntryMsgId(runId, entry), ...options });
}
