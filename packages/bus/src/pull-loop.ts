import type { Consumer, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@sluice/telemetry';

export interface PullLoopOptions {
  /** Most messages being handled at once; never more are pulled. */
  concurrency: number;
  /** How long one pull waits for messages before asking again. */
  expiresMs?: number;
  logger: Logger;
  /** Hears every failed pull (a keeper's `suspect`: the consumer or its stream may be gone). */
  onPullError?: (error: unknown) => void;
}

export interface PullLoop {
  /** Messages being handled now. */
  readonly inFlight: number;
  /** Stops pulling, waits for in-flight handlers (up to `graceMs`), then resolves. */
  stop(graceMs?: number): Promise<{ unfinished: number }>;
  /** Resolves when the loop has stopped. */
  readonly done: Promise<void>;
}

/**
 * Pulls exactly as many messages as there are free handler slots, so a message never waits in a
 * client buffer with its ack timer running, and `max_ack_pending` reflects real work.
 * A handler must settle its message (ack, nak or term); a handler that throws gets its message nak'ed.
 */
export function startPullLoop(
  consumer: Consumer,
  options: PullLoopOptions,
  handler: (msg: JsMsg) => Promise<void>,
): PullLoop {
  const { logger } = options;
  let inFlight = 0;
  let stopping = false;
  let wake: (() => void) | null = null;
  const idle = new Set<() => void>();

  const notify = (): void => {
    wake?.();
    wake = null;
    if (inFlight === 0) for (const resolve of idle) resolve();
  };
  const waitForSlot = (): Promise<void> =>
    inFlight < options.concurrency || stopping ? Promise.resolve() : new Promise((resolve) => (wake = resolve));

  const run = (msg: JsMsg): void => {
    inFlight += 1;
    handler(msg)
      .catch((error: unknown) => {
        logger.error({ err: error, subject: msg.subject }, 'handler failed; message put back');
        msg.nak(1_000);
      })
      .finally(() => {
        inFlight -= 1;
        notify();
      });
  };

  const done = (async () => {
    let backoff = 250;
    while (!stopping) {
      await waitForSlot();
      if (stopping) break;
      try {
        const batch = await consumer.fetch({
          max_messages: options.concurrency - inFlight,
          // The client refuses pulls shorter than a second.
          expires: Math.max(1_000, options.expiresMs ?? 2_000),
        });
        for await (const msg of batch) {
          if (stopping) {
            // Pulled after stop was asked: give it straight back.
            msg.nak();
            continue;
          }
          run(msg);
        }
        backoff = 250;
      } catch (error) {
        if (stopping) break;
        logger.warn({ err: error }, 'pull failed; retrying');
        options.onPullError?.(error);
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  })();

  return {
    get inFlight() {
      return inFlight;
    },
    done,
    async stop(graceMs = 30_000) {
      stopping = true;
      notify();
      await done;
      if (inFlight > 0) {
        let resolveIdle!: () => void;
        const allIdle = new Promise<void>((resolve) => (resolveIdle = resolve));
        idle.add(resolveIdle);
        await Promise.race([allIdle, new Promise((resolve) => setTimeout(resolve, graceMs).unref())]);
        idle.delete(resolveIdle);
      }
      return { unfinished: inFlight };
    },
  };
}

/**
 * Keeps a message's ack timer from running out while long work goes on (`working()` every
 * third of the ack wait), so a slow migration is never redelivered to a second executor.
 */
export async function withInProgress<T>(msg: JsMsg, ackWaitMs: number, work: () => Promise<T>): Promise<T> {
  const timer = setInterval(() => msg.working(), Math.max(1_000, Math.floor(ackWaitMs / 3)));
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
