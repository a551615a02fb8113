/**
 * NATS subjects, JetStream stream, bucket and consumer names: the addresses of Sluice, each built
 * *and* read here. Other systems subscribe to the public ones; renaming one is a breaking change.
 */

/** Where migration requests are published (captured by the requests stream). */
export const REQUEST_SUBJECT = 'sluice.requests.migrate';
/** Where invalid requests are answered, with the reasons. */
export const REJECTED_SUBJECT = 'sluice.requests.rejected';

/**
 * The events of a run, on `sluice.runs.<runId>.<event>`. `control`: pause, resume, cancel (and
 * rollout decisions). `lost`: the JetStream store was lost while the run was in flight.
 */
export const RUN_EVENTS = ['accepted', 'planned', 'progress', 'completed', 'control', 'lost'] as const;
export type RunEventName = (typeof RUN_EVENTS)[number];

const RUNS_PREFIX = 'sluice.runs.';
const OUTCOMES_PREFIX = 'sluice.outcomes.';
const LEDGER_PREFIX = 'sluice.ledger.';
const TASKS_PREFIX = 'sluice.tasks.';

/** Every subject of one kind, across runs and hosts: the filters of the streams and of live followers. */
export const ALL_RUN_EVENTS = `${RUNS_PREFIX}>`;
export const ALL_TASKS = `${TASKS_PREFIX}>`;
export const ALL_OUTCOMES = `${OUTCOMES_PREFIX}>`;
export const ALL_LEDGER_ENTRIES = `${LEDGER_PREFIX}>`;

export function runEventSubject(runId: string, event: RunEventName): string {
  return `${RUNS_PREFIX}${runId}.${event}`;
}

/** Every event of one run (a filter for subscribers). */
export function runEventsFilter(runId: string): string {
  return `${RUNS_PREFIX}${runId}.>`;
}

/** One kind of event of every run (`sluice.runs.*.accepted`): a filter for listing runs. */
export function everyRunFilter(event: RunEventName): string {
  return `${RUNS_PREFIX}*.${event}`;
}

/** True for a run event name Sluice publishes. */
export function isRunEventName(name: string): name is RunEventName {
  return (RUN_EVENTS as readonly string[]).includes(name);
}

/**
 * Reads `sluice.runs.<runId>.<event>`: the runId as written — not checked, so a malformed one can
 * be named in a rejection (check it with `RunIdSchema`) — and the last token as the event (check it
 * with {@link isRunEventName}). Undefined for any other subject.
 */
export function parseRunEventSubject(subject: string): { runId: string; event: string } | undefined {
  if (!subject.startsWith(RUNS_PREFIX)) return undefined;
  const dot = subject.lastIndexOf('.');
  if (dot <= RUNS_PREFIX.length) return undefined;
  return { runId: subject.slice(RUNS_PREFIX.length, dot), event: subject.slice(dot + 1) };
}

/** Internal: per-tenant work, one subject per database host. */
export function taskSubject(hostKey: string): string {
  return `${TASKS_PREFIX}${encodeSubjectToken(hostKey)}`;
}

/** The database host of a task subject (decoded), or undefined for another subject. */
export function parseTaskSubject(subject: string): string | undefined {
  const token = tokenAfter(subject, TASKS_PREFIX);
  return token === undefined ? undefined : decodeSubjectToken(token);
}

/** Internal: per-tenant outcomes, one subject per run. */
export function outcomeSubject(runId: string): string {
  return `${OUTCOMES_PREFIX}${runId}`;
}

/** The runId of an outcome subject as written (check it with `RunIdSchema`), or undefined for another subject. */
export function parseOutcomeSubject(subject: string): string | undefined {
  return tokenAfter(subject, OUTCOMES_PREFIX);
}

/** Internal: the task ledger of a run (planned, parked and re-published tasks), one subject per run. */
export function ledgerSubject(runId: string): string {
  return `${LEDGER_PREFIX}${runId}`;
}

/** The runId of a ledger subject as written (check it with `RunIdSchema`), or undefined for another subject. */
export function parseLedgerSubject(subject: string): string | undefined {
  return tokenAfter(subject, LEDGER_PREFIX);
}

/** The one token after `prefix`, or undefined when the subject has another shape. */
function tokenAfter(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(prefix)) return undefined;
  const token = subject.slice(prefix.length);
  return token === '' || token.includes('.') ? undefined : token;
}

/** Default JetStream stream names. */
export const STREAMS = {
  /** Migration requests: kept so a request is never lost while the planner is down. */
  requests: { name: 'SLUICE_REQUESTS', subjects: [REQUEST_SUBJECT] },
  /** Run events and rejections: kept so a late subscriber can replay a run. */
  runs: { name: 'SLUICE_RUNS', subjects: [ALL_RUN_EVENTS, REJECTED_SUBJECT] },
  /** Tenant tasks: a work queue, each task consumed once. */
  tasks: { name: 'SLUICE_TASKS', subjects: [ALL_TASKS] },
  /** Tenant outcomes: kept so the reporter can rebuild a run after a restart. */
  outcomes: { name: 'SLUICE_OUTCOMES', subjects: [ALL_OUTCOMES] },
} as const;

/**
 * Internal: the task ledger (what was planned, parked and published again per run), so that a
 * lost or parked task can be published again. Created by the services that use it.
 */
export const LEDGER_STREAM = { name: 'SLUICE_LEDGER', subjects: [ALL_LEDGER_ENTRIES] } as const;

const MAX_DELIVERIES_PREFIX = `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${STREAMS.tasks.name}.`;

/** The subject of the server's MAX_DELIVERIES advisories for one consumer of SLUICE_TASKS. */
export function maxDeliveriesSubject(consumer: string): string {
  return `${MAX_DELIVERIES_PREFIX}${consumer}`;
}

/** Internal: the server's MAX_DELIVERIES advisories of the host consumers (a task no executor lived through). */
export const ADVISORY_STREAM = {
  name: 'SLUICE_ADVISORIES',
  subjects: [maxDeliveriesSubject('*')],
} as const;

/** JetStream key-value and object store buckets. */
export const BUCKETS = {
  /** KV, key: runId. The claims of run ids: the idempotency keys of requests (planner). */
  runClaims: 'sluice_runs',
  /** KV, key: runId. Each run's control state, written by the reporter, obeyed by executors. */
  runControl: 'sluice_run_control',
  /** Object store, name: digest. Migration sets, stored by the planner, loaded by executors. */
  bundles: 'sluice_bundles',
  /** KV, key: `t.<tenantId>` (see `fleetKey`) and `summary`. Each tenant's fleet state, written by the reporter. */
  fleet: 'sluice_fleet',
  /**
   * KV, keys with no value: the fleet index (`i.<host>.<status>.<version>.<tenant>`,
   * `g.<tag>.<value>.<host>.<status>.<tenant>`; see `fleetIndexKey`). A bucket of its own: on
   * nats-server 2.9 a filtered consumer costs time for every subject of its stream, so the
   * records' listings must not pay for the index's subjects, nor the index's for the records'.
   */
  fleetIndex: 'sluice_fleet_index',
} as const;

const HOST_CONSUMER_PREFIX = 'host_';

/** The durable consumer of one database host's tasks on SLUICE_TASKS (`host_<host:port as a subject token>`). */
export function hostConsumerName(hostKey: string): string {
  return `${HOST_CONSUMER_PREFIX}${encodeSubjectToken(hostKey)}`;
}

/** The host a consumer name stands for, or undefined when it is not a host consumer. */
export function hostKeyOfConsumer(name: string): string | undefined {
  return name.startsWith(HOST_CONSUMER_PREFIX)
    ? decodeSubjectToken(name.slice(HOST_CONSUMER_PREFIX.length))
    : undefined;
}

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
