import { type ConsumerMessages, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from './bus.js';

/**
 * How every follower pulls. An ordered consumer has one replica, on one node; when that node is
 * killed and the client's own connection stays up, the client learns of it only from missing idle
 * heartbeats (two of them), then makes a new consumer where it stopped — and one made while the
 * cluster settles can be deaf too, so it may take two rounds. The server sends a heartbeat every
 * half pull expiry: the client's default expiry (30 s) left a follower deaf for 30–60 s per lost
 * node (chaos seed 2: the reporter saw no outcome for a minute, took 87 settled tasks for lost and
 * published them again). A 2 s expiry notices in 2–3 s, for one pull request per 2 s while idle.
 */
export const FOLLOW_PULL = { max_messages: 1_000, expires: 2_000 } as const;

export interface StreamFollower {
  /** Resolves once every message that was in the stream at start has been handled. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Replays a stream from its first message, then follows it live, with an ordered consumer
 * (no server-side state to clean up; gaps are repaired by the client). The handler is awaited
 * for each message in order.
 */
export async function followStream(
  bus: Bus,
  stream: string,
  logger: Logger,
  handler: (msg: JsMsg) => Promise<void> | void,
): Promise<StreamFollower> {
  const info = await bus.jsm.streams.info(stream);
  let markCaughtUp!: () => void;
  const caughtUp = new Promise<void>((resolve) => (markCaughtUp = resolve));
  if (info.state.messages === 0) markCaughtUp();
  const consumer = await bus.js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  const messages = await consumer.consume(FOLLOW_PULL);
  logConsumerResets(messages, stream, logger);
  const done = handleInOrder(messages, stream, logger, handler, (msg) => {
    if (msg.info.pending === 0) markCaughtUp();
  });
  return {
    caughtUp,
    async stop() {
      await messages.close();
      await done;
    },
  };
}

/** Logs a follower's consumer being made again (its node went away): rare, and it explains a pause. */
export function logConsumerResets(messages: ConsumerMessages, stream: string, logger: Logger): void {
  void (async () => {
    for await (const s of messages.status()) {
      if (s.type === 'heartbeats_missed' && s.count === 2)
        logger.warn({ stream }, 'follower: idle heartbeats missed; making its consumer again');
      else if (s.type === 'ordered_consumer_recreated')
        logger.info({ stream, consumer: s.name }, 'follower: consumer made again');
    }
  })().catch(() => undefined);
}

/**
 * Awaits the handler for each message in order; a handler that throws is logged and the message
 * skipped (followers read, they never redeliver). Resolves when the iterator closes.
 */
export async function handleInOrder(
  messages: AsyncIterable<JsMsg>,
  stream: string,
  logger: Logger,
  handler: (msg: JsMsg) => Promise<void> | void,
  after?: (msg: JsMsg) => void,
): Promise<void> {
  for await (const msg of messages) {
    try {
      await handler(msg);
    } catch (error) {
      logger.error({ err: error, subject: msg.subject, stream }, 'message handler failed; message skipped');
    }
    after?.(msg);
  }
}
