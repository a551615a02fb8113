import type { PubAck } from '@nats-io/jetstream';
import type { MsgHdrs } from '@nats-io/transport-node';

import type { Bus } from './bus.js';

/**
 * A stream refused a message because it is at its `max_bytes` or `max_msgs` (`discard: new`, see
 * `SLUICE_STREAM_MAX_BYTES`). Nothing stored is lost, but nothing new goes in until the limit is
 * raised or old messages age out: trying again at once is pointless, holding the message is not.
 */
export class StreamFullError extends Error {
  override readonly name = 'StreamFullError';
  readonly transient = true;
  constructor(
    readonly subject: string,
    options: ErrorOptions,
  ) {
    super(
      `the stream for ${subject} is full (${(options.cause as Error).message}): raise SLUICE_STREAM_MAX_BYTES on the planner and reporter (or lower SLUICE_RETENTION) and restart one of them`,
      options,
    );
  }
}

/** JetStream's "maximum bytes exceeded" / "maximum messages exceeded" (API error 10077). */
export function isStreamFull(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const api = (error as { code?: unknown }).code;
  return api === 10077 || /maximum (bytes|messages) exceeded/i.test(error.message);
}

/**
 * Publishes with retries: a publish that timed out may or may not have been stored, and the
 * `msgId` makes trying again safe (a repeat inside the duplicate window is dropped by the server).
 * The message carries the caller's active trace context (see `Bus.publish`). A full stream is
 * not retried: it throws {@link StreamFullError} at once.
 */
export async function publishReliably(
  bus: Bus,
  subject: string,
  payload: unknown,
  options: { msgId?: string; attempts?: number; headers?: MsgHdrs } = {},
): Promise<PubAck> {
  const attempts = options.attempts ?? 8;
  let delay = 200;
  for (let attempt = 1; ; attempt++) {
    try {
      return await bus.publish(subject, payload, {
        ...(options.msgId ? { msgId: options.msgId } : {}),
        ...(options.headers ? { headers: options.headers } : {}),
      });
    } catch (error) {
      if (isStreamFull(error)) throw new StreamFullError(subject, { cause: error });
      if (attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

/**
 * Keeps up to `window` publishes in flight, so a planner publishing a million tasks is not
 * bound by one round trip per task. `drain()` waits for every outstanding ack.
 */
export class PublishWindow {
  private readonly inFlight = new Set<Promise<unknown>>();
  private failure: Error | undefined;

  constructor(private readonly window: number) {}

  submit(publish: () => Promise<unknown>): Promise<void> {
    return this.submitAll([publish]);
  }

  /**
   * Starts every publish at once — in one turn of the event loop, so the client writes their
   * messages to the socket together (one write, not one each) — then waits while the window is
   * full. The window is checked per batch: it may be exceeded by the batch's size.
   */
  async submitAll(publishes: Array<() => Promise<unknown>>): Promise<void> {
    if (this.failure) throw this.failure;
    for (const publish of publishes) {
      const p = publish().then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= error instanceof Error ? error : new Error(String(error));
        },
      );
      this.inFlight.add(p);
      void p.finally(() => this.inFlight.delete(p));
    }
    while (this.inFlight.size >= this.window) await Promise.race(this.inFlight);
  }

  async drain(): Promise<void> {
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}
