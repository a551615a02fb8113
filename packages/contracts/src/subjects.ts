/**
 * NATS subjects and JetStream stream names: the public addresses of Sluice.
 * Other systems subscribe to these; renaming one is a breaking change.
 */

/** Where migration requests are published (captured by the requests stream). */
export const REQUEST_SUBJECT = 'sluice.requests.migrate';
/** Where invalid requests are answered, with the reasons. */
export const REJECTED_SUBJECT = 'sluice.requests.rejected';

/** The events of a run, on `sluice.runs.<runId>.<event>`. `control`: pause, resume, cancel (and rollout decisions). */
export const RUN_EVENTS = ['accepted', 'planned', 'progress', 'completed', 'control'] as const;
export type RunEventName = (typeof RUN_EVENTS)[number];

export function runEventSubject(runId: string, event: RunEventName): string {
  return `sluice.runs.${runId}.${event}`;
}

/** Every event of one run (a filter for subscribers). */
export function runEventsFilter(runId: string): string {
  return `sluice.runs.${runId}.>`;
}

/** Internal: per-tenant work, one subject per database host. */
export function taskSubject(hostKey: string): string {
  return `sluice.tasks.${encodeSubjectToken(hostKey)}`;
}

/** Internal: per-tenant outcomes, one subject per run. */
export function outcomeSubject(runId: string): string {
  return `sluice.outcomes.${runId}`;
}

/** Internal: the task ledger of a run (planned, parked and re-published tasks), one subject per run. */
export function ledgerSubject(runId: string): string {
  return `sluice.ledger.${runId}`;
}

/** Default JetStream stream names. */
export const STREAMS = {
  /** Migration requests: kept so a request is never lost while the planner is down. */
  requests: { name: 'SLUICE_REQUESTS', subjects: [REQUEST_SUBJECT] },
  /** Run events and rejections: kept so a late subscriber can replay a run. */
  runs: { name: 'SLUICE_RUNS', subjects: ['sluice.runs.>', REJECTED_SUBJECT] },
  /** Tenant tasks: a work queue, each task consumed once. */
  tasks: { name: 'SLUICE_TASKS', subjects: ['sluice.tasks.>'] },
  /** Tenant outcomes: kept so the reporter can rebuild a run after a restart. */
  outcomes: { name: 'SLUICE_OUTCOMES', subjects: ['sluice.outcomes.>'] },
} as const;

/**
 * Internal: the task ledger (what was planned, parked and published again per run), so that a
 * lost or parked task can be published again. Created by the services that use it.
 */
export const LEDGER_STREAM = { name: 'SLUICE_LEDGER', subjects: ['sluice.ledger.>'] } as const;

// A subject token cannot hold '.', '*', '>' or white space. Hosts (`10.0.0.5:5432`) do,
// so they are escaped as `_xx` (hex); '_' itself is escaped so that the mapping is reversible.
const SAFE_TOKEN_CHAR = /[A-Za-z0-9:-]/;

/** Encodes any string into one NATS subject token, reversibly. */
export function encodeSubjectToken(value: string): string {
  let out = '';
  for (const ch of value) {
    if (SAFE_TOKEN_CHAR.test(ch)) {
      out += ch;
    } else {
      for (const byte of new TextEncoder().encode(ch)) out += `_${byte.toString(16).padStart(2, '0')}`;
    }
  }
  return out;
}

/** Reverses {@link encodeSubjectToken}. */
export function decodeSubjectToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '_') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(token.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}
