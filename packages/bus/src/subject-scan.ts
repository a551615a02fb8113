import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { createInbox, type Msg, nanos } from '@nats-io/transport-node';

import type { Bus } from './bus.js';

/** One message read by a scan. */
export interface ScannedMessage {
  subject: string;
  data: Uint8Array;
  /** Its stream sequence. */
  seq: number;
  /** A KV delete or purge marker (its data is empty). */
  deleted: boolean;
}

/** Where a scan ended. */
export interface SubjectScanEnd {
  /** When the handler stopped the scan: the sequence to start the next one at; absent when the scan reached the end. */
  nextSeq?: number;
}

/** Messages asked for per pull request; two requests are kept in flight. */
const PULL_BATCH = 4_000;
/** How long a pull request waits for messages that are not there: a scan only reads what the stream holds. */
const PULL_EXPIRES_MS = 5_000;

/**
 * Reads a stream's messages under `filter` (none: every message) in stream order, from `fromSeq` up to the stream's last
 * sequence when the scan began (later writes are not waited for), handing each to `onMessage`,
 * which returns false to stop, or a promise to hold the scan until it settles.
 *
 * Built for a million small messages, which nats.js's ordered consumer reads at a third of the
 * speed: an ephemeral pull consumer without acks is read over a plain subscription, two pull
 * requests kept in flight so the server never waits for the client between batches, and only the
 * stream sequence and the count pending are read from each message's reply subject. At most two
 * batches are held at once, so memory stays flat however long the stream and however long the
 * handler holds the scan. Works on nats-server 2.9 (one filter subject, no batch get).
 */
export async function scanSubject(
  bus: Bus,
  stream: string,
  filter: string | undefined,
  fromSeq: number,
  onMessage: (message: ScannedMessage) => boolean | void | Promise<boolean | void>,
): Promise<SubjectScanEnd> {
  const info = await bus.jsm.streams.info(stream);
  const stopAt = info.state.last_seq;
  if (info.state.messages === 0 || fromSeq > stopAt) return {};
  const consumer = await bus.jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    ...(filter !== undefined ? { filter_subject: filter } : {}),
    mem_storage: true,
    num_replicas: 1,
    // Removed by the server if this process dies mid-scan.
    inactive_threshold: nanos(30_000),
    ...(fromSeq > 1
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }
      : { deliver_policy: DeliverPolicy.All }),
  });
  const remove = (): Promise<void> =>
    bus.jsm.consumers.delete(stream, consumer.name).then(
      () => undefined,
      () => undefined,
    );
  if (consumer.num_pending === 0) {
    await remove();
    return {};
  }
  const inbox = createInbox();
  const nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer.name}`;
  const pullRequest = JSON.stringify({ batch: PULL_BATCH, expires: nanos(PULL_EXPIRES_MS) });
  const replyOf = replySubjectReader();

  try {
    return await new Promise<SubjectScanEnd>((resolve, reject) => {
      /** Messages asked for and not yet received. */
      let asked = 0;
      const queue: Msg[] = [];
      let head = 0;
      let holding = false;
      let requestsEnded = false;
      let finished = false;

      const finish = (end: SubjectScanEnd | Error): void => {
        if (finished) return;
        finished = true;
        sub.unsubscribe();
        if (end instanceof Error) reject(end);
        else resolve(end);
      };

      const ask = (): void => {
        while (!finished && !requestsEnded && asked + (queue.length - head) < 2 * PULL_BATCH) {
          bus.nc.publish(nextSubject, pullRequest, { reply: inbox });
          asked += PULL_BATCH;
        }
      };

      /** Hands one message on; returns true when the scan is over. */
      const handle = (msg: Msg): boolean => {
        const { seq, pending } = replyOf(msg.reply ?? '');
        if (seq > stopAt) {
          finish({});
          return true;
        }
        const last = pending === 0 || seq >= stopAt;
        const stopped = (): void => finish(last ? {} : { nextSeq: seq + 1 });
        const verdict = onMessage({
          subject: msg.subject,
          data: msg.data,
          seq,
          deleted: msg.headers?.get('KV-Operation') ? true : false,
        });
        if (verdict instanceof Promise) {
          holding = true;
          verdict.then(
            (v) => {
              holding = false;
              if (v === false) stopped();
              else if (last) finish({});
              else drain();
            },
            (error: unknown) => finish(error instanceof Error ? error : new Error(String(error))),
          );
          return true;
        }
        if (verdict === false) {
          stopped();
          return true;
        }
        if (last) finish({});
        return last;
      };

      const drain = (): void => {
        while (!finished && !holding && head < queue.length) {
          const msg = queue[head]!;
          queue[head++] = undefined as unknown as Msg;
          if (handle(msg)) break;
        }
        if (head === queue.length) {
          queue.length = 0;
          head = 0;
        }
        if (finished || holding) return;
        // A request that ended short (expired: nothing more under the filter) and nothing left to hand on.
        if (requestsEnded && head === queue.length) finish({});
        else ask();
      };

      const sub = bus.nc.subscribe(inbox, {
        callback: (error, msg) => {
          if (finished) return;
          if (error) return finish(error);
          if (msg.subject === inbox) {
            // A status: 100 is a heartbeat; 404/408 end a request that found no more messages.
            const code = msg.headers?.code ?? 0;
            if (code === 404 || code === 408) requestsEnded = true;
            else if (code !== 100)
              return finish(new Error(`scan of ${stream}: ${code} ${msg.headers?.description ?? ''}`));
          } else {
            asked -= 1;
            queue.push(msg);
          }
          drain();
        },
      });
      ask();
    });
  } finally {
    await remove();
  }
}

/**
 * Reads the stream sequence and the count still pending from a JetStream message's reply subject:
 * `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or the newer form with a
 * domain and account hash after `ACK` and a random token at the end. Counted from the end, without
 * splitting the subject: this runs once per message of a million-message scan.
 */
function replySubjectReader(): (reply: string) => { seq: number; pending: number } {
  let trailing: number | undefined;
  return (reply) => {
    // Tokens after `pending`: 0 in the 9-token form, 1 (the random token) in the 12-token one.
    trailing ??= reply.split('.').length >= 12 ? 1 : 0;
    let end = reply.length;
    for (let i = 0; i < trailing; i++) end = reply.lastIndexOf('.', end - 1);
    const pendingDot = reply.lastIndexOf('.', end - 1);
    const tsDot = reply.lastIndexOf('.', pendingDot - 1);
    const dseqDot = reply.lastIndexOf('.', tsDot - 1);
    const sseqDot = reply.lastIndexOf('.', dseqDot - 1);
    return { seq: Number(reply.slice(sseqDot + 1, dseqDot)), pending: Number(reply.slice(pendingDot + 1, end)) };
  };
}
