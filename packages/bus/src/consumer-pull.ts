import { createRequire } from 'node:module';
import path from 'node:path';

import type { JsMsg } from '@nats-io/jetstream';
import { createInbox, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node';

/**
 * A pull on one durable pull consumer that keeps its inbox subscription from pull to pull: each
 * `pull(batch)` sends one pull request (`CONSUMER.MSG.NEXT`) for exactly `batch` messages, what
 * `consumer.fetch()` sends, without the new subscription, iterator, close listener and timers
 * nats.js sets up (and the server's SUB/UNSUB) for every fetch. A lane that frees one slot at a
 * time pulls one message per task, so that set-up was a pull per tenant.
 */
export interface ConsumerPull {
  /**
   * Asks for up to `batch` messages, waiting at most `expiresMs` for them; `onMessage` gets each as
   * it arrives. Resolves with how many came, once the batch is full or the server ends the
   * request (it expired: 408); rejects with {@link PullStatusError} when the server refuses it
   * (the consumer was deleted, leadership changed, ...), and with {@link PullNoAnswerError} when
   * the server says nothing after the expiry (the stream or consumer is gone: the server does not
   * answer a pull on a consumer it does not know; or the connection was lost). One pull at a time.
   */
  pull(batch: number, expiresMs: number, onMessage: (msg: JsMsg) => void): Promise<number>;
  /** Ends the subscription; a pull in progress resolves with what it got. */
  close(): void;
}

/** The server ended a pull request with a status other than "expired" (409 consumer deleted, 503, ...). */
export class PullStatusError extends Error {
  override readonly name = 'PullStatusError';
  constructor(
    readonly code: number,
    description: string,
  ) {
    super(`pull request ended by the server: ${code} ${description}`);
  }
}

/** No word from the server about a pull request after its expiry. */
export class PullNoAnswerError extends Error {
  override readonly name = 'PullNoAnswerError';
  constructor(stream: string, consumer: string) {
    super(`no answer to a pull on ${stream}/${consumer} after it expired: the consumer may be gone`);
  }
}

/** How long after its expiry a request is given up without the server's 408 (a lost connection). */
const SERVER_SILENCE_MS = 2_000;

export function openConsumerPull(nc: NatsConnection, stream: string, consumer: string): ConsumerPull {
  const toJsMsg = jsMsgWrapper();
  const subject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${consumer}`;
  let inbox = '';
  let sub: Subscription | undefined;
  let active: { want: number; got: number; onMessage: (msg: JsMsg) => void; end: (error?: Error) => void } | undefined;

  const receive = (error: Error | null, msg: Msg): void => {
    if (error) return active?.end(error);
    if (msg.subject !== inbox) {
      const jsMsg = toJsMsg(msg);
      // Only a request given up on (its subscription is renewed then) can overdeliver: back at once.
      if (!active || active.got >= active.want) return jsMsg.nak();
      active.got += 1;
      active.onMessage(jsMsg);
      if (active.got === active.want) active.end();
      return;
    }
    // A status about the request in progress (the server sends none for a batch delivered in full).
    const code = msg.headers?.code ?? 0;
    if (code === 100) return; // an idle heartbeat: none is asked for
    if (code === 408 || code === 404) return active?.end();
    active?.end(new PullStatusError(code, msg.headers?.description ?? ''));
  };
  const subscribe = (): void => {
    sub?.unsubscribe();
    inbox = createInbox();
    sub = nc.subscribe(inbox, { callback: receive });
  };

  return {
    pull(batch, expiresMs, onMessage) {
      if (active) return Promise.reject(new Error('a pull is already in progress on this consumer'));
      if (!sub) subscribe();
      return new Promise<number>((resolve, reject) => {
        const timer = setTimeout(
          () => request.end(new PullNoAnswerError(stream, consumer)),
          expiresMs + SERVER_SILENCE_MS,
        );
        const request = {
          want: batch,
          got: 0,
          onMessage,
          end: (error?: Error): void => {
            if (active !== request) return;
            clearTimeout(timer);
            active = undefined;
            if (error) {
              // A request ended in error may still deliver: its late messages and status must
              // not count for the next one, which gets a new inbox.
              sub?.unsubscribe();
              sub = undefined;
              reject(error);
            } else resolve(request.got);
          },
        };
        active = request;
        try {
          nc.publish(subject, JSON.stringify({ batch, expires: expiresMs * 1_000_000 }), { reply: inbox });
        } catch (error) {
          request.end(error instanceof Error ? error : new Error(String(error)));
        }
      });
    },
    close() {
      sub?.unsubscribe();
      sub = undefined;
      active?.end();
    },
  };
}

type ToJsMsg = (msg: Msg, ackTimeoutMs?: number) => JsMsg;
let wrapper: ToJsMsg | undefined;

/**
 * nats.js's own wrapper that makes a JetStream message of a delivered one (`toJsMsg`: ack, nak,
 * term, working, delivery info), which its package leaves out of its public exports. The version
 * is pinned; `consumer-pull.test.ts` fails on an upgrade that moves it.
 */
function jsMsgWrapper(): ToJsMsg {
  if (wrapper) return wrapper;
  const require = createRequire(import.meta.url);
  const lib = path.dirname(require.resolve('@nats-io/jetstream'));
  const { toJsMsg } = require(path.join(lib, 'jsmsg.js')) as { toJsMsg?: ToJsMsg };
  if (typeof toJsMsg !== 'function') throw new Error(`@nats-io/jetstream has no toJsMsg in ${lib}/jsmsg.js`);
  wrapper = toJsMsg;
  return wrapper;
}
