import { MigrateRequestSchema, RunIdSchema } from '@sluice/contracts';

/** mulberry32: a small seeded PRNG, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** One malformed message and what its rejection must say. */
export interface BadCase {
  /** The class of bad input (rows of the report table). */
  kind: string;
  bytes: Uint8Array;
  /** The JSON value sent, when it is JSON (for the HTTP API too). */
  json?: unknown;
  /** Every rejection reason joined must match this. */
  reason: RegExp;
  /** The runId the rejection must carry (undefined: none). */
  runId?: string;
}

const enc = new TextEncoder();
const LATEST = 6;

const INVALID_RUN_IDS = [
  '',
  'a'.repeat(65),
  'run 1',
  'run.1',
  'run*',
  'run>',
  'rün',
  '../../etc/passwd',
  "x'; DROP TABLE sluice_migrations; --",
  '$(rm -rf /)',
  '{{7*7}}',
  '<script>alert(1)</script>',
  'run\u0000id',
  'run\r\nNats-Msg-Id: x',
  'sluice.runs.>',
];
const INJECTION_SELECTORS: unknown[] = [
  { ids: { $ne: null } },
  { ids: { $gt: '' } },
  { ids: [{ $ne: null }] },
  { ids: ["' OR '1'='1", { $where: 'sleep(5000)' }] },
  { tags: { $where: 'sleep(5000)' } },
  { tags: { $or: '[{"tier":"gold"}]' } },
  { tags: { 'tags.tier': 'gold' } },
  { tags: { "x'; DROP TABLE public.sluice_migrations; --": 'y' } },
  { tags: { tier: { $ne: 'gold' } } },
  { tags: { tier: ['gold', 'silver'] } },
  { tags: { 'a\u0000b': 'x' } },
  { $or: [{ ids: ['a'] }, { tags: { t: 'v' } }] },
  { ids: ['a'], tags: { t: 'v' } },
  { ids: ['a'], all: true },
  {},
  { ids: [] },
  { tags: {} },
  'all',
  ['tenant-0001'],
  true,
];
const SPECIAL_KEYS = ['__proto__', 'constructor', 'prototype', '$where', 'runid', 'Target', 'tenant', 'dry_run'];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function randomString(rand: () => number, max = 24): string {
  const alphabet = 'abcXYZ019_-. \'"$\\/{}[]<>*\u0000\u00e9\u{1f600}\n';
  return Array.from({ length: Math.floor(rand() * max) }, () => pick(rand, [...alphabet])).join('');
}

function randomJson(rand: () => number, depth = 0): unknown {
  const r = rand();
  if (depth > 3 || r < 0.35) {
    return pick(rand, [
      null,
      true,
      false,
      0,
      -1,
      1.5,
      1e308,
      Number.MAX_SAFE_INTEGER + 2,
      randomString(rand),
      'latest',
      '7',
      '',
    ]);
  }
  if (r < 0.55) return Array.from({ length: Math.floor(rand() * 4) }, () => randomJson(rand, depth + 1));
  const keys = [
    'runId',
    'target',
    'tenants',
    'dryRun',
    'requestedBy',
    'maxPerHost',
    'rollout',
    'ids',
    'tags',
    ...SPECIAL_KEYS,
  ];
  return Object.fromEntries(
    Array.from({ length: 1 + Math.floor(rand() * 5) }, () => [pick(rand, keys), randomJson(rand, depth + 1)]),
  );
}

/** The runId a rejection carries: the request's, when it is a valid one. */
function usableRunId(value: unknown): string | undefined {
  const candidate = (value as { runId?: unknown } | null)?.runId;
  return RunIdSchema.safeParse(candidate).success ? (candidate as string) : undefined;
}

function deepArray(depth: number): string {
  return `${'['.repeat(depth)}1${']'.repeat(depth)}`;
}

/**
 * At least `count` malformed migration requests, deterministic for a seed: every class of defect
 * the contract refuses, plus random JSON and random bytes. None of them may create a run.
 */
export function generateBadRequests(seed: number, count: number): BadCase[] {
  const rand = seededRandom(seed);
  const cases: BadCase[] = [];
  const json = (kind: string, value: unknown, reason: RegExp, runId?: string): BadCase => ({
    kind,
    bytes: enc.encode(JSON.stringify(value)),
    json: value,
    reason,
    ...(runId ? { runId } : {}),
  });
  const raw = (kind: string, text: string | Uint8Array, reason = /not JSON/): BadCase => ({
    kind,
    bytes: typeof text === 'string' ? enc.encode(text) : text,
    reason,
  });
  let n = 0;
  const id = (): string => `fx-bad-${seed.toString(36)}-${n++}`;

  // Fixed cases: each class at least once.
  cases.push(
    raw('non-JSON bytes', ''),
    raw('non-JSON bytes', 'runId=x&target=latest'),
    raw('non-JSON bytes', '{"runId": "a", "target": "latest"'),
  );
  cases.push(
    raw('non-JSON bytes', new Uint8Array([0xff, 0xfe, 0x00, 0x7b, 0x80, 0xc3])),
    raw('non-JSON bytes', "{'runId': 'a'}"),
    raw('non-JSON bytes', 'NaN'),
  );
  cases.push(raw('deep nesting', deepArray(100_000), /request: .*expected object/));
  const deepId = id();
  // Built as text: JSON.stringify itself overflows the stack on a value this deep.
  cases.push(raw('deep nesting', `{"runId":"${deepId}","target":${deepArray(20_000)}}`, /^target: must be "latest"/));
  cases[cases.length - 1]!.runId = deepId;
  cases.push({
    kind: 'oversized payload',
    ...(() => {
      const v = { runId: id(), target: 'latest', requestedBy: 'x'.repeat(900_000) };
      return { bytes: enc.encode(JSON.stringify(v)), json: v, reason: /^requestedBy: Too big/, runId: v.runId };
    })(),
  });
  cases.push({
    kind: 'oversized payload',
    ...(() => {
      const v = { runId: id(), target: 'latest', padding: 'y'.repeat(900_000) };
      return { bytes: enc.encode(JSON.stringify(v)), json: v, reason: /Unrecognized key: "padding"/, runId: v.runId };
    })(),
  });
  for (const selector of INJECTION_SELECTORS) {
    const runId = id();
    cases.push(
      json('injection-looking selector', { runId, target: 'latest', tenants: selector }, /^tenants[.:]/, runId),
    );
  }
  for (const bad of INVALID_RUN_IDS)
    cases.push(json('invalid runId', { runId: bad, target: 'latest' }, /^runId: runId must be 1-64 characters/));
  for (const key of ['__proto__', 'constructor']) {
    const runId = id();
    cases.push({
      kind: 'prototype keys',
      bytes: enc.encode(`{"runId":"${runId}","target":"latest","${key}":{"isAdmin":true}}`),
      reason: new RegExp(`Unrecognized key: "${key}"`),
      runId,
    });
  }

  // Generated cases until `count`.
  while (cases.length < count) {
    const r = rand();
    const runId = id();
    const base: Record<string, unknown> = { runId, target: pick(rand, ['latest', 3, '0004']) };
    if (r < 0.12) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      // Random bytes that happen to be JSON are rare; those are judged as JSON below.
      let text: unknown;
      try {
        text = JSON.parse(new TextDecoder().decode(bytes));
      } catch {
        cases.push(raw('non-JSON bytes', bytes));
        continue;
      }
      cases.push(json('random JSON', text, /.+/, usableRunId(text)));
    } else if (r < 0.2) {
      const value = pick(rand, [42, 'latest', null, true, [], [base], -0.5, randomString(rand)]);
      cases.push(json('JSON that is not an object', value, /^request: Invalid input: expected object/));
    } else if (r < 0.38) {
      const value = randomJson(rand);
      const parsed = MigrateRequestSchema.safeParse(value);
      const target = parsed.success ? parsed.data.target : undefined;
      if (parsed.success && (target === undefined || target === 'latest' || target <= LATEST)) continue; // valid by chance
      cases.push(json('random JSON', value, /.+/, usableRunId(value)));
    } else if (r < 0.48) {
      const target = pick(rand, [
        LATEST + 1,
        999,
        10 ** 12,
        '999999999999999',
        String(LATEST + 1 + Math.floor(rand() * 1e6)),
      ]);
      cases.push(
        json(
          'unknown target',
          { ...base, target },
          /target \d+ is not a version in the migration set \(latest is 6\)/,
          runId,
        ),
      );
    } else if (r < 0.58) {
      const target = pick(rand, [
        -1,
        1.5,
        'v2',
        'LATEST',
        '',
        ' 1',
        '1e3',
        '0x10',
        '1234567890123456',
        null,
        true,
        {},
        [3],
        { $gt: 0 },
      ]);
      cases.push(json('wrong type or value: target', { ...base, target }, /^target: /, runId));
    } else if (r < 0.66) {
      const [field, value, reason] = pick(rand, [
        ['dryRun', 'yes', /^dryRun: /],
        ['dryRun', 1, /^dryRun: /],
        ['requestedBy', 42, /^requestedBy: /],
        ['requestedBy', 'r'.repeat(201), /^requestedBy: Too big/],
        ['maxPerHost', 0, /^maxPerHost: Too small/],
        ['maxPerHost', 1025, /^maxPerHost: Too big/],
        ['maxPerHost', 2.5, /^maxPerHost: /],
        ['maxPerHost', '8', /^maxPerHost: /],
        ['rollout', { canary: -1 }, /^rollout\.canary: /],
        ['rollout', { maxFailureRate: 1.5 }, /^rollout\.maxFailureRate: /],
        ['rollout', { canaries: 3 }, /^rollout: Unrecognized key/],
        ['rollout', 'fast', /^rollout: /],
      ] as Array<[string, unknown, RegExp]>);
      cases.push(json('wrong type or value: options', { ...base, [field]: value }, reason, runId));
    } else if (r < 0.72) {
      const key = pick(rand, ['extra', 'tenantIds', 'runid', 'Target', 'priority', 'dry_run']);
      cases.push(
        json(
          'unknown field',
          { ...base, [key]: randomJson(rand) },
          new RegExp(`^request: Unrecognized key: "${key}"`),
          runId,
        ),
      );
    } else if (r < 0.78) {
      const bad =
        rand() < 0.6
          ? pick(rand, INVALID_RUN_IDS)
          : `${randomString(rand, 8)}${pick(rand, ['.', ' ', '*', '>', '/', 'é', '\u0000'])}`;
      cases.push(json('invalid runId', { ...base, runId: bad }, /^runId: runId must be 1-64 characters/));
    } else if (r < 0.82) {
      const value = pick(rand, [undefined, 7, null, ['r1'], { id: 'r1' }]);
      const { runId: _omit, ...rest } = base;
      cases.push(json('missing or mistyped runId', value === undefined ? rest : { ...rest, runId: value }, /^runId: /));
    } else if (r < 0.86) {
      const { target: _omit, ...rest } = base;
      cases.push(json('missing target', rest, /^target: /, runId));
    } else if (r < 0.93) {
      const [selector, reason] = pick(rand, [
        [
          { ids: Array.from({ length: 10_001 + Math.floor(rand() * 5_000) }, (_, i) => `t${i}`) },
          /^tenants: ids: Too big/,
        ],
        [
          { ids: Array.from({ length: 50 }, () => 'x'.repeat(201)) },
          /^tenants(: |\.)ids\.0: tenantId must be at most 200/,
        ],
        [{ ids: ['a', ''] }, /^tenants(: |\.)ids\.1: tenantId must not be empty/],
        [
          { tags: Object.fromEntries(Array.from({ length: 33 + Math.floor(rand() * 100) }, (_, i) => [`k${i}`, 'v'])) },
          /^tenants(\.tags)?: .*1 to 32 tags/,
        ],
        [{ ids: Array.from({ length: 20 }, (_, i) => i) }, /^tenants(: |\.)ids\.0: /],
      ] as Array<[unknown, RegExp]>);
      cases.push(json('huge or malformed selector', { ...base, tenants: selector }, reason, runId));
    } else {
      const selector = pick(rand, INJECTION_SELECTORS);
      cases.push(json('injection-looking selector', { ...base, tenants: selector }, /^tenants[.:]/, runId));
    }
  }
  return cases;
}

/** Malformed control events: a subject (under sluice.runs.) and a payload, and the rejection's reason. */
export interface BadControl {
  kind: string;
  subject: string;
  bytes: Uint8Array;
  reason: RegExp;
  /** The runId the rejection carries (the subject's, when usable). */
  runId?: string;
}

export function generateBadControls(seed: number, runId: string, count: number): BadControl[] {
  const rand = seededRandom(seed ^ 0x5eed);
  const subject = `sluice.runs.${runId}.control`;
  const at = new Date().toISOString();
  const out: BadControl[] = [];
  const json = (kind: string, s: string, value: unknown, reason: RegExp, r?: string): BadControl => ({
    kind,
    subject: s,
    bytes: enc.encode(JSON.stringify(value)),
    reason,
    ...(r ? { runId: r } : {}),
  });
  for (let i = 0; out.length < count; i++) {
    const k = i % 8;
    if (k === 0)
      out.push({
        kind: 'control: not JSON',
        subject,
        bytes: enc.encode(pick(rand, ['pause', '', '{"action":', '\u0000\u0001'])),
        reason: /not JSON/,
        runId,
      });
    else if (k === 1)
      out.push(
        json(
          'control: unknown action',
          subject,
          { runId, action: pick(rand, ['stop-now', 'PAUSE', 'delete', '', 'resume;DROP']), at },
          /^action: /,
          runId,
        ),
      );
    else if (k === 2)
      out.push(
        json(
          'control: missing or mistyped fields',
          subject,
          pick(rand, [
            { runId, action: 'pause' },
            { action: 'pause', at },
            { runId, action: 7, at },
            'pause',
            null,
            [],
          ]),
          /^(at|runId|action|control): /,
          runId,
        ),
      );
    else if (k === 3)
      out.push(
        json(
          'control: oversized reason',
          subject,
          { runId, action: 'pause', reason: 'r'.repeat(501 + Math.floor(rand() * 5000)), at },
          /^reason: Too big/,
          runId,
        ),
      );
    else if (k === 4)
      out.push(
        json(
          'control: runId of another run',
          subject,
          { runId: `other-${i}`, action: 'cancel', at },
          /is not the run of the subject/,
          runId,
        ),
      );
    else if (k === 5) {
      const ghost = `fx-ghost-${i}`;
      out.push(
        json(
          'control: unknown run',
          `sluice.runs.${ghost}.control`,
          { runId: ghost, action: pick(rand, ['pause', 'resume', 'cancel']), at },
          new RegExp(`^no run ${ghost}$`),
          ghost,
        ),
      );
    } else if (k === 6) {
      const bad = pick(rand, ['a.b', 'x'.repeat(65), 'r$1', 'a.b.c']);
      out.push(
        json(
          'control: subject names no run',
          `sluice.runs.${bad}.control`,
          { runId: bad, action: 'pause', at },
          /^subject: does not name a run/,
        ),
      );
    } else {
      const [field, value] = pick(rand, [
        ['reason', 5],
        ['requestedBy', { name: 'x' }],
        ['requestedBy', 'u'.repeat(201)],
        ['at', 17],
      ] as Array<[string, unknown]>);
      out.push(
        json(
          'control: mistyped reason, requestedBy or at',
          subject,
          { runId, action: 'cancel', at, [field]: value },
          new RegExp(`^${field}: `),
          runId,
        ),
      );
    }
  }
  return out;
}
