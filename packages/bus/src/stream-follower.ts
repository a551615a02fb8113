import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from './bus.js';

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
  const messages = await consumer.consume({ max_messages: 1_000 });
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
