import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  outcomeSubject,
  parseRunEventSubject,
  REJECTED_SUBJECT,
  type RejectedEvent,
  type RunCompletedEvent,
  runEventsFilter,
  STREAMS,
  type TenantOutcome,
} from '@sluice/contracts';

/**
 * Asks until JetStream answers or the deadline passes: a server that has just restarted (or a
 * cluster electing leaders) times out or has no responders for a while, which a watcher must outlast.
 */
export async function untilAnswered<T>(deadline: number, ask: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await ask();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** Every event of a run published so far and until `until` returns true (replayed from the stream). */
export async function collectRunEvents(
  nc: NatsConnection,
  runId: string,
  until: (subject: string, data: unknown) => boolean,
  timeoutMs = 60_000,
): Promise<Array<{ subject: string; data: unknown }>> {
  const js = jetstream(nc);
  const deadline = Date.now() + timeoutMs;
  const consumer = await untilAnswered(deadline, () =>
    js.consumers.get(STREAMS.runs.name, {
      filter_subjects: runEventsFilter(runId),
      deliver_policy: DeliverPolicy.All,
    }),
  );
  const messages = await consumer.consume();
  const events: Array<{ subject: string; data: unknown }> = [];
  const timer = setTimeout(() => void messages.close(), Math.max(0, deadline - Date.now()));
  try {
    for await (const msg of messages) {
      const data = msg.json();
      events.push({ subject: msg.subject, data });
      if (until(msg.subject, data)) break;
    }
  } finally {
    clearTimeout(timer);
    await messages.close();
  }
  return events;
}

/** Waits for a run's `completed` event (already published or still to come). */
export async function waitForCompleted(
  nc: NatsConnection,
  runId: string,
  timeoutMs = 120_000,
): Promise<RunCompletedEvent> {
  const isCompleted = (subject: string): boolean => parseRunEventSubject(subject)?.event === 'completed';
  const events = await collectRunEvents(nc, runId, isCompleted, timeoutMs);
  const completed = events.find((e) => isCompleted(e.subject));
  if (!completed)
    throw new Error(
      `run ${runId} did not complete within ${timeoutMs} ms (events seen: ${events.map((e) => e.subject).join(', ')})`,
    );
  return completed.data as RunCompletedEvent;
}

/** Every `rejected` event so far (replayed from the stream). */
export async function listRejected(nc: NatsConnection): Promise<RejectedEvent[]> {
  const js = jetstream(nc);
  const jsm = await js.jetstreamManager();
  const info = await jsm.streams.info(STREAMS.runs.name, { subjects_filter: REJECTED_SUBJECT });
  const count = info.state.subjects?.[REJECTED_SUBJECT] ?? 0;
  if (count === 0) return [];
  const consumer = await js.consumers.get(STREAMS.runs.name, {
    filter_subjects: REJECTED_SUBJECT,
    deliver_policy: DeliverPolicy.All,
  });
  const out: RejectedEvent[] = [];
  const messages = await consumer.consume();
  for await (const msg of messages) {
    out.push(msg.json());
    if (msg.info.pending === 0) break;
  }
  await messages.close();
  return out;
}

/** How many outcomes a run has so far (a stream count; cheap to poll). */
export async function countOutcomes(nc: NatsConnection, runId: string): Promise<number> {
  const jsm = await jetstream(nc).jetstreamManager();
  const subject = outcomeSubject(runId);
  const info = await jsm.streams.info(STREAMS.outcomes.name, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

/** Every outcome of a run so far. */
export async function listOutcomes(nc: NatsConnection, runId: string): Promise<TenantOutcome[]> {
  const count = await countOutcomes(nc, runId);
  if (count === 0) return [];
  const js = jetstream(nc);
  const consumer = await js.consumers.get(STREAMS.outcomes.name, {
    filter_subjects: outcomeSubject(runId),
    deliver_policy: DeliverPolicy.All,
  });
  const out: TenantOutcome[] = [];
  const messages = await consumer.fetch({ max_messages: count, expires: 10_000 });
  for await (const msg of messages) out.push(msg.json());
  return out;
}
