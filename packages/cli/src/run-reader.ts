import { type Bus, decodeJson, readSubject } from '@sluice/bus';
import {
  applyControl,
  everyRunFilter,
  initialControlState,
  parseRunEventSubject,
  type RunAcceptedEvent,
  RunAcceptedEventSchema,
  type RunCompletedEvent,
  RunCompletedEventSchema,
  type RunControlEvent,
  RunControlEventSchema,
  type RunControlState,
  runEventsFilter,
  runEventSubject,
  type RunLostEvent,
  RunLostEventSchema,
  type RunPlannedEvent,
  RunPlannedEventSchema,
  type RunProgressEvent,
  RunProgressEventSchema,
  type RunStatus,
  runStatus,
  STREAMS,
} from '@sluice/contracts';

/** What the run events say of one run: the CLI reads them from SLUICE_RUNS, so it needs nothing but NATS. */
export interface RunView {
  runId: string;
  status: RunStatus;
  accepted?: RunAcceptedEvent;
  planned?: RunPlannedEvent;
  progress?: RunProgressEvent;
  completed?: RunCompletedEvent;
  /**
   * The JetStream store was lost while the run was in flight (the run's other events went with
   * it): until `sluice runs recover` publishes its `completed`, this is all that is known.
   */
  lost?: RunLostEvent;
  /** Controls folded in stream order, as the reporter and the executors fold them. */
  control: RunControlState;
  controls: RunControlEvent[];
}

function parse<T>(
  schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } },
  data: Uint8Array,
): T | undefined {
  try {
    const parsed = schema.safeParse(decodeJson(data));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

class RunFold {
  accepted?: RunAcceptedEvent;
  planned?: RunPlannedEvent;
  progress?: RunProgressEvent;
  completed?: RunCompletedEvent;
  lost?: RunLostEvent;
  readonly controls: Array<{ event: RunControlEvent; seq: number }> = [];

  constructor(readonly runId: string) {}

  view(): RunView {
    const start = this.accepted
      ? initialControlState(this.runId, this.accepted.rollout, 0, this.accepted.acceptedAt)
      : initialControlState(this.runId, undefined, 0, new Date(0).toISOString());
    const control = this.controls
      .sort((a, b) => a.seq - b.seq)
      .reduce((state, c) => applyControl(state, c.event, c.seq), start);
    return {
      runId: this.runId,
      status: runStatus(control, { planned: this.planned !== undefined, completed: this.completed?.status }),
      ...(this.accepted ? { accepted: this.accepted } : {}),
      ...(this.planned ? { planned: this.planned } : {}),
      ...(this.progress ? { progress: this.progress } : {}),
      ...(this.completed ? { completed: this.completed } : {}),
      ...(this.lost ? { lost: this.lost } : {}),
      control: this.completed ? { ...control, final: this.completed.status } : control,
      controls: this.controls.map((c) => c.event),
    };
  }
}

/** Every event of one run, folded; undefined when the stream has none. */
export async function readRun(bus: Bus, runId: string): Promise<RunView | undefined> {
  const fold = new RunFold(runId);
  const count = await readSubject(bus, STREAMS.runs.name, runEventsFilter(runId), (msg) => {
    const event = parseRunEventSubject(msg.subject)?.event;
    if (event === 'accepted') fold.accepted ??= parse(RunAcceptedEventSchema, msg.data);
    else if (event === 'planned') fold.planned ??= parse(RunPlannedEventSchema, msg.data);
    else if (event === 'completed') fold.completed ??= parse(RunCompletedEventSchema, msg.data);
    else if (event === 'progress') fold.progress = parse(RunProgressEventSchema, msg.data) ?? fold.progress;
    else if (event === 'lost') fold.lost ??= parse(RunLostEventSchema, msg.data);
    else if (event === 'control') {
      const control = parse(RunControlEventSchema, msg.data);
      if (control) fold.controls.push({ event: control, seq: msg.seq });
    }
  });
  return count === 0 ? undefined : fold.view();
}

/**
 * Every run the stream still holds (7 days), newest first: one pass over each kind of run event
 * (progress excepted), then the last progress event of each unfinished run.
 */
export async function listRuns(bus: Bus): Promise<RunView[]> {
  const runs = new Map<string, RunFold>();
  const fold = (runId: string): RunFold => {
    let f = runs.get(runId);
    if (!f) runs.set(runId, (f = new RunFold(runId)));
    return f;
  };
  // The filter has one token per runId, so the subject always parses.
  const runIdOf = (subject: string): string => parseRunEventSubject(subject)!.runId;
  await readSubject(
    bus,
    STREAMS.runs.name,
    everyRunFilter('accepted'),
    (m) => void (fold(runIdOf(m.subject)).accepted ??= parse(RunAcceptedEventSchema, m.data)),
  );
  await readSubject(
    bus,
    STREAMS.runs.name,
    everyRunFilter('planned'),
    (m) => void (fold(runIdOf(m.subject)).planned ??= parse(RunPlannedEventSchema, m.data)),
  );
  await readSubject(
    bus,
    STREAMS.runs.name,
    everyRunFilter('completed'),
    (m) => void (fold(runIdOf(m.subject)).completed ??= parse(RunCompletedEventSchema, m.data)),
  );
  await readSubject(
    bus,
    STREAMS.runs.name,
    everyRunFilter('lost'),
    (m) => void (fold(runIdOf(m.subject)).lost ??= parse(RunLostEventSchema, m.data)),
  );
  await readSubject(bus, STREAMS.runs.name, everyRunFilter('control'), (m) => {
    const control = parse(RunControlEventSchema, m.data);
    if (control) fold(runIdOf(m.subject)).controls.push({ event: control, seq: m.seq });
  });
  for (const f of runs.values()) {
    if (f.completed) continue;
    const last = await bus.jsm.streams.getMessage(STREAMS.runs.name, {
      last_by_subj: runEventSubject(f.runId, 'progress'),
    });
    if (last) f.progress = parse(RunProgressEventSchema, last.data);
  }
  return [...runs.values()]
    .map((f) => f.view())
    .sort((a, b) =>
      (b.accepted?.acceptedAt ?? b.lost?.lastKnown.acceptedAt ?? '').localeCompare(
        a.accepted?.acceptedAt ?? a.lost?.lastKnown.acceptedAt ?? '',
      ),
    );
}
