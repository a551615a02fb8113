import { type JetStreamManager, type PubAck, RetentionPolicy, type StreamConfig } from '@nats-io/jetstream';
import {
  LEDGER_BATCH_MAX,
  LEDGER_STREAM,
  ledgerEntryMsgId,
  ledgerSubject,
  type PlannedTask,
  type TaskLedgerEntry,
} from '@sluice/contracts';

import type { Bus } from '../bus.js';
import { JsonText } from '../codec.js';
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

export interface PlannedLedgerOptions {
  /** Tasks per entry (at most `LEDGER_BATCH_MAX`). */
  maxTasks?: number;
  /** Encoded task bytes per entry: well under a server's `max_payload` (1 MB by default). */
  maxBytes?: number;
  /** A batch that is not full is written this long after its first task. */
  lingerMs?: number;
  /** Publish attempts per entry. */
  attempts?: number;
}

/**
 * The planner's side of the task ledger: the tasks it published, written as `plannedBatch`
 * entries of up to `maxTasks` tasks — one ledger message, one acknowledgement and one message
 * for every reporter to read per batch instead of per tenant. A batch is written when full, when
 * its oldest task has waited `lingerMs`, and by `drain()`, which the planner awaits before it
 * announces the plan (`planned`): a planned run's ledger is complete. A write that fails fails
 * the next `add` or the `drain`, so the plan is retried (and resumed: its tasks are repeats).
 */
export class PlannedLedger {
  private pending: PlannedTask[] = [];
  /** `pending`, each encoded once: measured by `add`, joined into the entry by `flush`. */
  private encoded: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly writes = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;
  private readonly maxTasks: number;
  private readonly maxBytes: number;
  private readonly lingerMs: number;

  constructor(
    private readonly bus: Bus,
    private readonly runId: string,
    private readonly options: PlannedLedgerOptions = {},
  ) {
    this.maxTasks = Math.max(1, Math.min(LEDGER_BATCH_MAX, options.maxTasks ?? LEDGER_BATCH_MAX));
    this.maxBytes = options.maxBytes ?? 256 * 1024;
    this.lingerMs = options.lingerMs ?? 50;
  }

  /** Records a published task; writes the batch when it is full (awaited: backpressure). */
  async add(planned: PlannedTask): Promise<void> {
    this.throwIfFailed();
    const json = JSON.stringify(planned);
    // One more byte for the comma that joins it to the batch.
    const size = json.length + 1;
    if (this.pending.length > 0 && this.bytes + size > this.maxBytes) await this.flush();
    this.pending.push(planned);
    this.encoded.push(json);
    this.bytes += size;
    if (this.pending.length >= this.maxTasks) await this.flush();
    else
      this.timer ??= setTimeout(() => {
        this.flush().catch(() => undefined);
      }, this.lingerMs);
  }

  /** Writes every task recorded so far and waits for all writes; throws the first failure. */
  async drain(): Promise<void> {
    await this.flush().catch(() => undefined);
    await Promise.allSettled([...this.writes]);
    this.throwIfFailed();
  }

  private flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return Promise.resolve();
    const entry: TaskLedgerEntry = { kind: 'plannedBatch', tasks: this.pending };
    const json = plannedBatchJson(this.encoded);
    this.pending = [];
    this.encoded = [];
    this.bytes = 0;
    const write = publishReliably(this.bus, ledgerSubject(this.runId), json, {
      msgId: ledgerEntryMsgId(this.runId, entry),
      attempts: this.options.attempts,
    })
      .then(() => undefined)
      .catch((error: unknown) => {
        this.failure ??= { error };
        throw error;
      })
      .finally(() => this.writes.delete(write));
    this.writes.add(write);
    return write;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** A `plannedBatch` ledger entry as JSON, from its tasks already encoded: `{ kind, tasks }`, as `JSON.stringify` writes it. */
function plannedBatchJson(encodedTasks: readonly string[]): JsonText {
  return new JsonText(`{"kind":"plannedBatch","tasks":[${encodedTasks.join(',')}]}`);
}
