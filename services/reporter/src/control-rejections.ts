import { type Bus, decodeJson, type JsMsg, publishReliably } from '@sluice/bus';
import {
  isRunId,
  parseRunEventSubject,
  REJECTED_SUBJECT,
  type RejectedEvent,
  RunControlEventSchema,
} from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

const MAX_REASONS = 20;

/**
 * Why a message on a run's control subject is not a control of a known run, or undefined when it
 * is one. A control that is well formed but does not apply (resume of a running run) is not a
 * rejection: it changes nothing, as documented.
 */
export function controlProblems(
  subject: string,
  data: Uint8Array,
  isKnownRun: (runId: string) => boolean,
): Omit<RejectedEvent, 'rejectedAt'> | undefined {
  const address = parseRunEventSubject(subject);
  if (address?.event !== 'control') return undefined;
  const subjectRunId = isRunId(address.runId) ? address.runId : undefined;
  const base = { ...(subjectRunId ? { runId: subjectRunId } : {}), subject: subject.slice(0, 300) };
  if (!subjectRunId) {
    return {
      ...base,
      reasons: [
        'subject: does not name a run (sluice.runs.<runId>.control, runId 1-64 characters of A-Z, a-z, 0-9, "_" or "-")',
      ],
    };
  }
  let raw: unknown;
  try {
    raw = decodeJson(data);
  } catch (error) {
    return { ...base, reasons: [(error as Error).message.slice(0, 500)] };
  }
  const parsed = RunControlEventSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      ...base,
      reasons: parsed.error.issues
        .slice(0, MAX_REASONS)
        .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'control'}: ${i.message}`.slice(0, 500)),
    };
  }
  if (parsed.data.runId !== subjectRunId)
    return { ...base, reasons: [`runId: ${parsed.data.runId} is not the run of the subject (${subjectRunId})`] };
  if (!isKnownRun(subjectRunId)) return { ...base, reasons: [`no run ${subjectRunId}`] };
  return undefined;
}

/**
 * Answers malformed control events, and controls of runs that do not exist, with a `rejected`
 * event (with the control's subject), so whoever sent one learns why nothing happened. Only
 * messages after `fromSeq` are answered: a restarted reporter replays history without answering
 * it again. The message id (`control-rejected:<seq>`) makes replicas answer once between them.
 */
export function createControlRejecter(deps: { bus: Bus; logger: Logger; fromSeq: number }) {
  let pending: Promise<void> = Promise.resolve();
  return {
    /** True when the message is a control that must not be folded (it was rejected). */
    check(msg: JsMsg, isKnownRun: (runId: string) => boolean): boolean {
      const problems = controlProblems(msg.subject, msg.data, isKnownRun);
      if (!problems) return false;
      deps.logger.warn({ subject: problems.subject, reasons: problems.reasons }, 'control rejected');
      if (msg.seq < deps.fromSeq) return true;
      const event: RejectedEvent = { ...problems, rejectedAt: new Date().toISOString() };
      pending = pending
        .then(() => publishReliably(deps.bus, REJECTED_SUBJECT, event, { msgId: `control-rejected:${msg.seq}` }))
        .then(
          () => undefined,
          (error: unknown) =>
            deps.logger.warn({ err: error, subject: problems.subject }, 'control rejection not published'),
        );
      return true;
    },
    /** Resolves once every rejection so far is published (or given up). */
    idle: (): Promise<void> => pending,
  };
}
