import { z } from 'zod';

import { FINAL_RUN_STATUSES, type FinalRunStatus, type RunStatus } from './events.js';
import { type Rollout, RunIdSchema } from './request.js';

/** What a person (or another system) may ask of a running run. */
export const USER_CONTROL_ACTIONS = ['pause', 'resume', 'cancel'] as const;
export type UserControlAction = (typeof USER_CONTROL_ACTIONS)[number];
/**
 * Every control action. `promote` (the canaries succeeded: the fleet may start) and `stop` (a
 * rollout threshold was passed: skip the rest, the run fails) are published by the reporter.
 */
export const RUN_CONTROL_ACTIONS = [...USER_CONTROL_ACTIONS, 'promote', 'stop'] as const;
export type RunControlAction = (typeof RUN_CONTROL_ACTIONS)[number];

/** `sluice.runs.<runId>.control` (public): one control action on a run. */
export const RunControlEventSchema = z.object({
  runId: RunIdSchema,
  action: z.enum(RUN_CONTROL_ACTIONS),
  /** Why, in words (shown in status and in the completed event). */
  reason: z.string().max(500).optional(),
  /** Who asked (free text). */
  requestedBy: z.string().max(200).optional(),
  at: z.string(),
});
export type RunControlEvent = z.infer<typeof RunControlEventSchema>;

const ControlNoteSchema = z.object({
  action: z.enum(RUN_CONTROL_ACTIONS),
  reason: z.string().optional(),
  requestedBy: z.string().optional(),
  at: z.string(),
});

/**
 * Internal: what executors obey for one run, folded from the run's events in stream order and kept
 * in the KV bucket `sluice_run_control` (key: the runId).
 */
export const RunControlStateSchema = z.object({
  runId: RunIdSchema,
  /** `running`: tenants start; `paused`: tasks are parked until resumed; `cancelling`: tasks are skipped. */
  state: z.enum(['running', 'paused', 'cancelling']),
  /** `canary`: only canary tasks start; `fleet`: every task. */
  stage: z.enum(['canary', 'fleet']),
  /** Set once the run has completed: any task still around is skipped. */
  final: z.enum(FINAL_RUN_STATUSES).optional(),
  /** The control that put the run in its current state (pause, cancel or stop). */
  note: ControlNoteSchema.optional(),
  /** The `cancel` or `stop` that ends the run early, once there is one. */
  stoppedBy: ControlNoteSchema.optional(),
  /** Stream sequence (in SLUICE_RUNS) of the last event folded in: a writer never replaces a newer record. */
  seq: z.number().int().nonnegative(),
  updatedAt: z.string(),
});
export type RunControlState = z.infer<typeof RunControlStateSchema>;

/** A run's control state when it is accepted. */
export function initialControlState(
  runId: string,
  rollout: Rollout | undefined,
  seq: number,
  at: string,
): RunControlState {
  return { runId, state: 'running', stage: (rollout?.canary ?? 0) > 0 ? 'canary' : 'fleet', seq, updatedAt: at };
}

/** Why `action` cannot apply to a run in this state, or undefined when it can. */
export function controlRefusal(state: RunControlState, action: RunControlAction): string | undefined {
  if (state.final) return `run ${state.runId} has already completed (${state.final})`;
  if (state.state === 'cancelling') {
    return `run ${state.runId} is being ${state.stoppedBy?.action === 'stop' ? 'stopped by its rollout' : 'cancelled'}`;
  }
  switch (action) {
    case 'pause':
      return state.state === 'paused' ? `run ${state.runId} is already paused` : undefined;
    case 'resume':
      return state.state === 'paused' ? undefined : `run ${state.runId} is not paused`;
    case 'promote':
      return state.stage === 'fleet' ? `run ${state.runId} has no canaries waiting` : undefined;
    case 'cancel':
    case 'stop':
      return undefined;
  }
}

/**
 * Folds one control event into a run's control state. An action that does not apply (resume of a
 * running run, anything after a cancel) changes nothing: the same object is returned.
 */
export function applyControl(state: RunControlState, event: RunControlEvent, seq: number): RunControlState {
  if (controlRefusal(state, event.action)) return state;
  const note = {
    action: event.action,
    ...(event.reason ? { reason: event.reason } : {}),
    ...(event.requestedBy ? { requestedBy: event.requestedBy } : {}),
    at: event.at,
  };
  const next = { ...state, seq: Math.max(state.seq, seq), updatedAt: event.at };
  switch (event.action) {
    case 'pause':
      return { ...next, state: 'paused', note };
    case 'resume': {
      const { note: _dropped, ...rest } = next;
      return { ...rest, state: 'running' };
    }
    case 'promote':
      return { ...next, stage: 'fleet' };
    case 'cancel':
    case 'stop':
      return { ...next, state: 'cancelling', note, stoppedBy: note };
  }
}

/**
 * A run's status from its control state and how far it got: its final status once completed, else
 * `cancelling` or `paused` as its controls say, else `running` once planned, else `planning`.
 */
export function runStatus(
  control: Pick<RunControlState, 'state'>,
  progress: { planned: boolean; completed?: FinalRunStatus | undefined },
): RunStatus {
  if (progress.completed) return progress.completed;
  if (control.state === 'cancelling') return 'cancelling';
  if (control.state === 'paused') return 'paused';
  return progress.planned ? 'running' : 'planning';
}

/** Why a task is not started: the tenant's outcome is `skipped` with this error code. */
export type SkipCode = 'cancelled' | 'rollout_stopped' | 'run_completed';

/** What an executor does with a task of a run in this control state. */
export type GateDecision =
  | { action: 'proceed' }
  | { action: 'park'; reason: 'paused' | 'canary' }
  | { action: 'skip'; code: SkipCode; reason: string };

/**
 * The rule every executor applies before starting a tenant (and the reporter applies to parked
 * tasks): skip the tasks of a cancelled, stopped or finished run; park those of a paused run, and
 * fleet tasks of a staged rollout whose canaries have not all succeeded yet; start the rest.
 * With no control state (the reporter has not written one yet) only fleet tasks wait.
 */
export function gateDecision(
  control: RunControlState | undefined,
  task: { stage?: 'canary' | 'fleet' | undefined },
): GateDecision {
  const stop = control?.stoppedBy;
  const why = (prefix: string): string => (stop?.reason ? `${prefix}: ${stop.reason}` : prefix);
  if (stop || control?.state === 'cancelling') {
    return stop?.action === 'stop'
      ? { action: 'skip', code: 'rollout_stopped', reason: why('run stopped by its rollout') }
      : { action: 'skip', code: 'cancelled', reason: why('run cancelled') };
  }
  if (control?.final)
    return { action: 'skip', code: 'run_completed', reason: `run already completed (${control.final})` };
  if (control?.state === 'paused') return { action: 'park', reason: 'paused' };
  if (task.stage === 'fleet' && control?.stage !== 'fleet') return { action: 'park', reason: 'canary' };
  return { action: 'proceed' };
}

/** The body of a control request over HTTP (`POST /runs/:id/pause|resume|cancel`); all optional. */
export const ControlRequestSchema = z.strictObject({
  reason: z.string().max(500).optional(),
  requestedBy: z.string().max(200).optional(),
});
