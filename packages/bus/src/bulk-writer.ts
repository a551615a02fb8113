import type { PubAck } from '@nats-io/jetstream';

import type { Bus } from './bus.js';

/** Messages published between two acknowledged ones. */
const BATCH = 1_000;
/** Batches whose closing ack is awaited at once. */
const BATCHES_IN_FLIGHT = 2;

interface Batch {
  subjects: string[];
  payloads: Uint8Array[];
  /** The acknowledged publish of the batch's last message. */
  ack?: Promise<PubAck>;
}

/**
 * Writes many messages to one stream at the speed of core NATS publishes, for a rebuild that
 * writes millions of keys (a fleet recount): an acknowledged publish (a KV put) costs the client
 * ~80 µs of CPU in nats.js 3.4, a core publish a tenth of that (`packages/bus/bench/bulk-writer-cost.ts`).
 *
 * Each batch's messages go without an ack but the last, which goes with one. The server hands one
 * connection's messages to a stream in the order they were sent, so that ack says every message
 * before it was handled, and the gap between two acks' stream sequences says how many were
 * stored. Fewer than the batch holds (the stream refused some: full, or at a limit), and the writer
 * stops trusting the gaps: that batch and every one after it is written again message by message,
 * each acknowledged, so a refusal surfaces as the publish's own error. Another writer storing into
 * the stream at the same moment widens a gap: a refusal hidden by as many foreign writes inside one
 * batch goes unseen (the next rebuild puts it right).
 */
export class BulkWriter {
  private current: Batch = { subjects: [], payloads: [] };
  private readonly open: Batch[] = [];
  private failure: Error | undefined;
  /** A gap came up short: from then on every message is acknowledged. */
  private acked = false;
  /** Messages written. */
  written = 0;
  /** Messages written again with an ack after a short gap. */
  rewritten = 0;

  private constructor(
    private readonly bus: Bus,
    /** The stream sequence the next gap is counted from. */
    private lastSeq: number,
  ) {}

  /** A writer into `stream`, counting from its last sequence now. */
  static async open(bus: Bus, stream: string): Promise<BulkWriter> {
    const info = await bus.jsm.streams.info(stream);
    return new BulkWriter(bus, info.state.last_seq);
  }

  /**
   * Writes a message; returns a promise only when the caller should wait for acks before the next
   * (rejected once a write failed).
   */
  put(subject: string, payload: Uint8Array): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.failure);
    this.written += 1;
    if (this.acked) return this.publishAcked(subject, payload);
    const batch = this.current;
    batch.subjects.push(subject);
    batch.payloads.push(payload);
    if (batch.subjects.length < BATCH) {
      this.bus.nc.publish(subject, payload);
      return undefined;
    }
    return this.close(batch);
  }

  /** Waits for every message to be stored; throws the first failure. */
  async end(): Promise<void> {
    const batch = this.current;
    const last = batch.subjects.length - 1;
    if (last >= 0 && !this.acked) {
      // The partial batch went without acks: its last message again, with one (a repeat of a KV
      // key replaces the copy before it).
      batch.subjects.push(batch.subjects[last]!);
      batch.payloads.push(batch.payloads[last]!);
      await this.close(batch);
    }
    while (this.open.length > 0) await this.settle(this.open.shift()!);
    if (this.failure) throw this.failure;
  }

  private close(batch: Batch): Promise<void> | undefined {
    const at = batch.subjects.length - 1;
    batch.ack = this.bus.js.publish(batch.subjects[at]!, batch.payloads[at]);
    // Observed at once: a rejection waits here until `settle` reads it.
    batch.ack.catch(() => undefined);
    this.open.push(batch);
    this.current = { subjects: [], payloads: [] };
    if (this.open.length < BATCHES_IN_FLIGHT) return undefined;
    return this.settle(this.open.shift()!);
  }

  /** Reads a closed batch's ack (only while gaps are trusted: no batch closes after). */
  private async settle(batch: Batch): Promise<void> {
    try {
      const { seq } = await batch.ack!;
      const stored = seq - this.lastSeq;
      this.lastSeq = seq;
      if (stored >= batch.subjects.length) return;
      this.acked = true;
      // Sent after this batch without acks, and not counted now: written again as well.
      const unsure = [batch, ...this.open.splice(0), this.current];
      this.current = { subjects: [], payloads: [] };
      for (const each of unsure) {
        for (let i = 0; i < each.subjects.length; i++) {
          this.rewritten += 1;
          await this.publishAcked(each.subjects[i]!, each.payloads[i]!);
        }
      }
    } catch (error) {
      this.fail(error);
    }
  }

  private async publishAcked(subject: string, payload: Uint8Array): Promise<void> {
    try {
      await this.bus.js.publish(subject, payload);
    } catch (error) {
      throw this.fail(error);
    }
  }

  /** Keeps the first failure: every later write and `end` throw it. */
  private fail(error: unknown): Error {
    this.failure ??= error instanceof Error ? error : new Error(String(error));
    return this.failure;
  }
}
