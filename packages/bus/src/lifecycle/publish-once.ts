import { JetStreamApiError, type PubAck } from '@nats-io/jetstream';

import type { Bus } from '../bus.js';
import { encodeJson } from '../codec.js';
import { traceHeaders } from '../trace-context.js';

/** The server refused a publish because the subject's last message is not the one expected. */
function isWrongLastSequence(error: unknown): boolean {
  // 10071: JSStreamWrongLastSequenceErr.
  return error instanceof JetStreamApiError && (error.code === 10071 || /wrong last sequence/i.test(error.message));
}

/**
 * Publishes to a subject only if the subject's last message is at `lastSeq` (0: the subject holds
 * none), with `Nats-Expected-Last-Subject-Sequence`. Of publishers racing on the same subject —
 * replicas, restarts, retries, however far apart — one wins; the others resolve `{ published: false }`.
 */
export async function publishIfLast(
  bus: Bus,
  subject: string,
  payload: unknown,
  lastSeq: number,
  options: { msgId?: string; attempts?: number } = {},
): Promise<{ published: boolean; ack?: PubAck }> {
  const attempts = options.attempts ?? 8;
  let delay = 200;
  for (let attempt = 1; ; attempt++) {
    try {
      const headers = traceHeaders();
      const ack = await bus.js.publish(subject, encodeJson(payload), {
        ...(options.msgId ? { msgID: options.msgId } : {}),
        ...(headers ? { headers } : {}),
        expect: { lastSubjectSequence: lastSeq },
      });
      return { published: !ack.duplicate, ack };
    } catch (error) {
      if (isWrongLastSequence(error)) return { published: false };
      if (attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5_000);
    }
  }
}

/** Publishes the first and only message of a subject (a run's `completed`): exactly once, whoever tries. */
export function publishOnce(
  bus: Bus,
  subject: string,
  payload: unknown,
  options: { msgId?: string; attempts?: number } = {},
): Promise<{ published: boolean; ack?: PubAck }> {
  return publishIfLast(bus, subject, payload, 0, options);
}
