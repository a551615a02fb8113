import { type Bus, decodeJson, type JsMsg, publishReliably } from '@sluice/bus';
import {
  RunAcceptedEventSchema,
  RunCompletedEventSchema,
  runEventSubject,
  RunPlannedEventSchema,
  TenantOutcomeSchema,
} from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import { RunBook } from './run-book.js';

export interface ReporterDeps {
  bus: Bus;
  logger: Logger;
  book?: RunBook;
}

const RUN_SUBJECT = /^sluice\.runs\.([A-Za-z0-9_-]{1,64})\.([a-z]+)$/;

/**
 * Feeds run events and outcomes into the run book and publishes what falls due: `completed`
 * once per run (with a message id, so a second replica's copy is dropped by the server),
 * `progress` at most once per interval. Completions wait until the replay has caught up, so a
 * restarted reporter never re-announces a run it had already closed.
 */
export function createReporter(deps: ReporterDeps) {
  const { bus, logger } = deps;
  const book = deps.book ?? new RunBook();
  let live = false;

  async function complete(runId: string): Promise<void> {
    if (!live) return;
    const event = book.completionDue(runId);
    if (!event) return;
    book.onCompleted(event);
    await publishReliably(bus, runEventSubject(runId, 'completed'), event, { msgId: `${runId}:completed` });
    logger.info({ runId, status: event.status, counts: event.counts, durationMs: event.durationMs }, 'run completed');
  }

  function decode(msg: JsMsg): unknown {
    try {
      return decodeJson(msg.data);
    } catch {
      logger.warn({ subject: msg.subject }, 'ignoring a message that is not JSON');
      return undefined;
    }
  }

  async function onRunEvent(msg: JsMsg): Promise<void> {
    const match = RUN_SUBJECT.exec(msg.subject);
    if (!match) return;
    const [, runId, event] = match as unknown as [string, string, string];
    const data = decode(msg);
    if (data === undefined) return;
    const schema = event === 'accepted' ? RunAcceptedEventSchema : event === 'planned' ? RunPlannedEventSchema : event === 'completed' ? RunCompletedEventSchema : undefined;
    if (!schema) return;
    const parsed = schema.safeParse(data);
    if (!parsed.success || parsed.data.runId !== runId) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed run event');
      return;
    }
    if (event === 'accepted') book.onAccepted(RunAcceptedEventSchema.parse(data));
    else if (event === 'planned') book.onPlanned(RunPlannedEventSchema.parse(data));
    else book.onCompleted(RunCompletedEventSchema.parse(data));
    await complete(runId);
  }

  async function onOutcome(msg: JsMsg): Promise<void> {
    const data = decode(msg);
    if (data === undefined) return;
    const parsed = TenantOutcomeSchema.safeParse(data);
    if (!parsed.success) {
      logger.warn({ subject: msg.subject }, 'ignoring a malformed outcome');
      return;
    }
    if (book.onOutcome(parsed.data)) await complete(parsed.data.runId);
  }

  /** Called once both streams are replayed: from now on, completions are published. */
  async function goLive(): Promise<void> {
    live = true;
    for (const run of book.list()) await complete(run.runId);
  }

  async function publishProgress(): Promise<void> {
    for (const run of book.list()) {
      const event = book.progressDue(run.runId);
      if (event) await bus.publish(runEventSubject(run.runId, 'progress'), event);
    }
  }

  return { book, onRunEvent, onOutcome, goLive, publishProgress };
}

export type Reporter = ReturnType<typeof createReporter>;
