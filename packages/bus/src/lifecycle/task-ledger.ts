import { type JetStreamManager, type PubAck, RetentionPolicy, type StreamConfig } from '@nats-io/jetstream';
import { LEDGER_STREAM, ledgerEntryMsgId, ledgerSubject, type TaskLedgerEntry } from '@sluice/contracts';

import type { Bus } from '../bus.js';
import { publishReliably } from '../publish.js';
import { ensureStream, statesLimits, streamCommon, type TopologyOptions } from '../stream-settings.js';

const MINUTE_NS = 60 * 1e9;

/** The task ledger: limits retention like the outcomes, so a run's ledger lives as long as its outcomes do. */
export function ledgerStreamConfig(options: TopologyOptions = {}): Partial<StreamConfig> & { name: string } {
  return {
    ...streamCommon(options),
    name: LEDGER_STREAM.name,
    subjects: [...LEDGER_STREAM.subjects],
    retention: RetentionPolicy.Limits,
    duplicate_window: 10 * MINUTE_NS,
  };
}

/** Creates the task ledger stream if it is missing, or brings its limits to the configured ones (idempotent, safe to race). */
export async function ensureLedgerStream(jsm: JetStreamManager, options: TopologyOptions = {}): Promise<void> {
  await ensureStream(jsm, ledgerStreamConfig(options), statesLimits(options));
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
