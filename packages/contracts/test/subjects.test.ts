import { describe, expect, it } from 'vitest';

import {
  ALL_LEDGER_ENTRIES,
  ALL_OUTCOMES,
  decodeSubjectToken,
  encodeSubjectToken,
  everyRunFilter,
  hostConsumerName,
  hostKeyOfConsumer,
  isRunEventName,
  ledgerSubject,
  outcomeSubject,
  parseLedgerSubject,
  parseOutcomeSubject,
  parseRunEventSubject,
  parseTaskSubject,
  REJECTED_SUBJECT,
  REQUEST_SUBJECT,
  RUN_EVENTS,
  runEventsFilter,
  runEventSubject,
  STREAMS,
  taskSubject,
} from '../src/subjects.js';

/** What a NATS subject token may not hold. */
const FORBIDDEN = /[.*>\s]/;

const samples = [
  '10.0.0.5:5432',
  'db_host.example.com:6543',
  '[::1]:5432',
  'plain-host:5432',
  'Crème.brûlée:5432',
  'データベース.例:5432',
  'emoji-🐘.db:5432',
  'a.b*c>d e\tf\ng',
  '*',
  '>',
  '...',
  '_',
  '_2e',
  '__',
  '%20',
  '',
];

describe('encodeSubjectToken / decodeSubjectToken', () => {
  it.each(samples)('round-trips %j', (value) => {
    expect(decodeSubjectToken(encodeSubjectToken(value))).toBe(value);
  });

  it.each(samples)('encodes %j into a valid subject token', (value) => {
    const token = encodeSubjectToken(value);
    expect(token).not.toMatch(FORBIDDEN);
    expect(token).toMatch(/^[A-Za-z0-9:_-]*$/);
  });

  it('escapes dots and underscores as _xx hex', () => {
    expect(encodeSubjectToken('10.0.0.5:5432')).toBe('10_2e0_2e0_2e5:5432');
    expect(encodeSubjectToken('db_host.example.com:6543')).toBe('db_5fhost_2eexample_2ecom:6543');
  });

  it('leaves letters, digits, colons and hyphens alone', () => {
    expect(encodeSubjectToken('Host-01:5432')).toBe('Host-01:5432');
  });

  it('escapes non-ASCII characters byte by byte in UTF-8', () => {
    expect(encodeSubjectToken('é')).toBe('_c3_a9');
    expect(encodeSubjectToken('🐘')).toBe('_f0_9f_90_98');
  });

  it('escapes *, >, space and tab', () => {
    expect(encodeSubjectToken('* > \t')).toBe('_2a_20_3e_20_09');
  });

  it('maps different values to different tokens', () => {
    const values = ['a.b', 'a_b', 'a_2eb', 'a-b', 'a:b', 'A.b', 'a..b'];
    const tokens = new Set(values.map(encodeSubjectToken));
    expect(tokens.size).toBe(values.length);
  });

  it('decodes upper-case hex as well', () => {
    expect(decodeSubjectToken('10_2E0_2E0_2E5:5432')).toBe('10.0.0.5:5432');
  });
});

describe('subjects', () => {
  it('builds run event subjects and filters', () => {
    expect(runEventSubject('run-1', 'completed')).toBe('sluice.runs.run-1.completed');
    expect(RUN_EVENTS.map((e) => runEventSubject('r', e))).toEqual([
      'sluice.runs.r.accepted',
      'sluice.runs.r.planned',
      'sluice.runs.r.progress',
      'sluice.runs.r.completed',
      'sluice.runs.r.control',
      'sluice.runs.r.lost',
    ]);
    expect(runEventsFilter('run-1')).toBe('sluice.runs.run-1.>');
    expect(outcomeSubject('run-1')).toBe('sluice.outcomes.run-1');
  });

  it('puts each host into exactly one task subject token', () => {
    const subject = taskSubject('10.0.0.5:5432');
    expect(subject).toBe('sluice.tasks.10_2e0_2e0_2e5:5432');
    expect(subject.split('.')).toHaveLength(3);
    expect(decodeSubjectToken(subject.split('.')[2]!)).toBe('10.0.0.5:5432');
  });

  it('captures every subject in a stream', () => {
    const matches = (filter: string, subject: string) =>
      filter === subject || (filter.endsWith('.>') && subject.startsWith(filter.slice(0, -1)));
    const covered = (subject: string) =>
      Object.values(STREAMS).filter((s) => s.subjects.some((f) => matches(f, subject)));
    for (const subject of [
      REQUEST_SUBJECT,
      REJECTED_SUBJECT,
      runEventSubject('r', 'progress'),
      taskSubject('db.example.com:5432'),
      outcomeSubject('r'),
    ]) {
      expect(covered(subject)).toHaveLength(1);
    }
    expect(covered(REQUEST_SUBJECT)[0]?.name).toBe('SLUICE_REQUESTS');
    expect(covered(REJECTED_SUBJECT)[0]?.name).toBe('SLUICE_RUNS');
  });
});

describe('subject parsers read what the builders write', () => {
  it.each(RUN_EVENTS)('run event %s', (event) => {
    expect(parseRunEventSubject(runEventSubject('run-1', event))).toEqual({ runId: 'run-1', event });
    expect(isRunEventName(event)).toBe(true);
  });

  it('keeps a malformed runId as written, so a rejection can name it', () => {
    expect(parseRunEventSubject('sluice.runs.a.b.control')).toEqual({ runId: 'a.b', event: 'control' });
    expect(parseRunEventSubject('sluice.runs.control')).toBeUndefined();
    expect(parseRunEventSubject('sluice.outcomes.r1')).toBeUndefined();
    expect(isRunEventName('nonsense')).toBe(false);
  });

  it('outcome and ledger subjects, and the filters over every run', () => {
    expect(parseOutcomeSubject(outcomeSubject('r_9'))).toBe('r_9');
    expect(parseLedgerSubject(ledgerSubject('r_9'))).toBe('r_9');
    expect(parseLedgerSubject('sluice.ledger.a.b')).toBeUndefined();
    expect(parseLedgerSubject(outcomeSubject('r_9'))).toBeUndefined();
    expect(parseOutcomeSubject('sluice.outcomes.')).toBeUndefined();
    expect(ALL_OUTCOMES).toBe('sluice.outcomes.>');
    expect(ALL_LEDGER_ENTRIES).toBe('sluice.ledger.>');
    expect(everyRunFilter('accepted')).toBe('sluice.runs.*.accepted');
  });

  it('task subjects give back their host', () => {
    for (const host of samples.filter((h) => h !== '')) expect(parseTaskSubject(taskSubject(host))).toBe(host);
    expect(parseTaskSubject(outcomeSubject('r1'))).toBeUndefined();
  });

  it('host consumer names round-trip', () => {
    for (const host of samples) expect(hostKeyOfConsumer(hostConsumerName(host))).toBe(host);
    expect(hostConsumerName('10.0.0.5:5432')).toBe('host_10_2e0_2e0_2e5:5432');
    expect(hostKeyOfConsumer('sluice-planner')).toBeUndefined();
  });
});
