import { DeliverPolicy, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from '../bus.js';
import { handleInOrder } from '../stream-follower.js';

/** The stream's last sequence (0 when empty): where a live follower that must miss nothing starts after a replay. */
export async function lastSequence(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.last_seq;
}

/**
 * The subject's last message, or null when it has none. Only "no message" means none: a timeout
 * or a stream without a leader (a NATS node restarting) is asked again, then thrown — read as
 * "empty", it made `sluice resume` answer "no run" for a paused run, and would make a restarted
 * reporter replay a run without its outcomes.
 */
async function lastMessageOf(jsm: JetStreamManager, stream: string, subject: string) {
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      return await jsm.streams.getMessage(stream, { last_by_subj: subject });
    } catch (error) {
      if (attempt >= 6) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 2_000);
    }
  }
}

/** The JSON of a subject's last message, or null when it has none (a rollback reads the run it undoes). */
export async function readLastJson(bus: Bus, stream: string, subject: string): Promise<unknown> {
  const msg = await lastMessageOf(bus.jsm, stream, subject);
  return msg ? msg.json() : null;
}

/**
 * Reads every message of one subject (or filter) from the start of the stream up to `untilSeq`
 * (inclusive; default: what is there now), in order, with an ordered consumer, then stops.
 * Resolves with the number of messages handled. Cost: the subject's messages, not the stream's.
 */
export async function readSubject(
  bus: Bus,
  stream: string,
  subject: string,
  handler: (msg: JsMsg) => Promise<void> | void,
  options: { untilSeq?: number } = {},
): Promise<number> {
  const last = await lastMessageOf(bus.jsm, stream, subject);
  if (!last) return 0;
  const stopAt = Math.min(last.seq, options.untilSeq ?? Number.MAX_SAFE_INTEGER);
  const consumer = await bus.js.consumers.get(stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume({ max_messages: 1_000 });
  let count = 0;
  try {
    for await (const msg of messages) {
      if (msg.seq > stopAt) break;
      await handler(msg);
      count += 1;
      if (msg.seq >= stopAt || msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return count;
}

export interface LiveFollower {
  stop(): Promise<void>;
}

/**
 * Follows a stream (or a filter of it) from `fromSeq` on, live, with an ordered consumer; the
 * handler is awaited for each message in order, and a handler that throws is logged, not retried.
 */
export async function followFrom(
  bus: Bus,
  stream: string,
  subject: string,
  fromSeq: number,
  logger: Logger,
  handler: (msg: JsMsg) => Promise<void> | void,
): Promise<LiveFollower> {
  const consumer = await bus.js.consumers.get(stream, {
    filter_subjects: subject,
    ...(fromSeq > 1
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }
      : { deliver_policy: DeliverPolicy.All }),
  });
  const messages = await consumer.consume({ max_messages: 1_000 });
  const done = handleInOrder(messages, stream, logger, handler);
  return {
    async stop() {
      await messages.close();
      await done;
    },
  };
}
