import { DeliverPolicy, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from '../bus.js';
import { FOLLOW_PULL, handleInOrder, logConsumerResets } from '../stream-follower.js';

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

/** A subject read that made no progress before its deadline (the stream has no leader, a node is down). */
export class SubjectReadTimeoutError extends Error {
  override readonly name = 'SubjectReadTimeoutError';
  /** Worth asking again later: the stream was there, it did not answer in time. */
  readonly transient = true;
}

/** How long a subject read waits for its next message before it asks again, and gives up. */
export interface SubjectReadLimits {
  /** Read up to this stream sequence (inclusive); default: the subject's last message now. */
  untilSeq?: number;
  /** No message for this long (while some remain) closes the consumer and opens a new one at the next sequence. */
  stallMs?: number;
  /** The whole read fails with {@link SubjectReadTimeoutError} past this. */
  timeoutMs?: number;
}

/**
 * Reads every message of one subject (or filter) from the start of the stream up to `untilSeq`
 * (inclusive; default: what is there now), in order, with an ordered consumer, then stops.
 * Resolves with the number of messages handled. Cost: the subject's messages, not the stream's.
 *
 * A consumer whose server went away mid-read can wait forever for messages that are there: a
 * read that stalls (no message for `stallMs`, handler time not counted) resumes with a new
 * consumer after the last message handled, and fails with a typed error after `timeoutMs` — a
 * CLI asking during a NATS node restart answers or says why, it never hangs.
 */
export async function readSubject(
  bus: Bus,
  stream: string,
  subject: string,
  handler: (msg: JsMsg) => Promise<void> | void,
  options: SubjectReadLimits = {},
): Promise<number> {
  const last = await lastMessageOf(bus.jsm, stream, subject);
  if (!last) return 0;
  const stopAt = Math.min(last.seq, options.untilSeq ?? Number.MAX_SAFE_INTEGER);
  const stallMs = options.stallMs ?? 5_000;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let next = 1;
  let count = 0;
  let handlerError: { error: unknown } | undefined;
  for (;;) {
    const done = await readFrom(bus, stream, subject, next, stallMs, async (msg) => {
      if (msg.seq > stopAt) return true;
      try {
        await handler(msg);
      } catch (error) {
        handlerError = { error };
        throw error;
      }
      count += 1;
      next = msg.seq + 1;
      return msg.seq >= stopAt || msg.info.pending === 0;
    }).catch(() => false);
    // The handler's own failure is the caller's; only the consumer's are asked again.
    if (handlerError) throw handlerError.error;
    if (done) return count;
    if (Date.now() >= deadline) {
      throw new SubjectReadTimeoutError(
        `reading ${subject} from ${stream} made no progress for ${Math.round(timeoutMs / 1000)} s (stopped at sequence ${next}); is the NATS cluster up?`,
      );
    }
  }
}

/**
 * One consumer's pass from `fromSeq`: true once `onMessage` says it is done, false when the
 * consumer stalled or ended first (the caller opens a new one where this one stopped).
 */
async function readFrom(
  bus: Bus,
  stream: string,
  subject: string,
  fromSeq: number,
  stallMs: number,
  onMessage: (msg: JsMsg) => Promise<boolean>,
): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), stallMs);
  });
  const opening = (async () => {
    const consumer = await bus.js.consumers.get(stream, {
      filter_subjects: subject,
      ...(fromSeq > 1
        ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq }
        : { deliver_policy: DeliverPolicy.All }),
    });
    return consumer.consume(FOLLOW_PULL);
  })();
  const opened = await Promise.race([opening, stalled]).catch(() => undefined);
  clearTimeout(timer);
  if (!opened) {
    // A consumer that opens after its read gave up on it must be closed: nobody reads it, and its
    // idle-heartbeat timer alone kept a CLI alive after it had answered (chaos seed 2, `sluice
    // pause` killed after 120 s). Closing stops the timer at once.
    void opening.then(
      (late) => void late.close().catch(() => undefined),
      () => undefined,
    );
    return false;
  }
  const messages = opened;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void messages.close(), stallMs);
  };
  try {
    arm();
    for await (const msg of messages) {
      clearTimeout(timer);
      if (await onMessage(msg)) return true;
      arm();
    }
    return false;
  } finally {
    clearTimeout(timer);
    await messages.close().catch(() => undefined);
  }
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
  const messages = await consumer.consume(FOLLOW_PULL);
  logConsumerResets(messages, stream, logger);
  const done = handleInOrder(messages, stream, logger, handler);
  return {
    async stop() {
      await messages.close();
      await done;
    },
  };
}
