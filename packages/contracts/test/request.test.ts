import { describe, expect, it } from 'vitest';

import { MigrateRequestSchema, RunIdSchema, TargetSchema, TenantSelectorSchema } from '../src/request.js';

describe('RunIdSchema', () => {
  it.each(['r', 'run-2024_01', 'A'.repeat(64), '0'])('accepts %j', (runId) => {
    expect(RunIdSchema.parse(runId)).toBe(runId);
  });

  it.each(['', 'A'.repeat(65), 'run.1', 'run 1', 'run*', 'run>', 'rün', 'a/b', 7])('rejects %j', (runId) => {
    expect(RunIdSchema.safeParse(runId).success).toBe(false);
  });
});

describe('TargetSchema', () => {
  it.each([
    ['latest', 'latest'],
    [0, 0],
    [42, 42],
    ['42', 42],
    ['0007', 7],
    ['999999999999999', 999_999_999_999_999],
  ])('parses %j as %j', (input, output) => {
    expect(TargetSchema.parse(input)).toBe(output);
  });

  it.each([
    'LATEST',
    'Latest',
    '',
    ' 1',
    '1 ',
    '-1',
    '1.5',
    '1e3',
    '0x10',
    '1234567890123456',
    -1,
    1.5,
    Number.MAX_SAFE_INTEGER + 1,
    null,
    true,
  ])('rejects %j', (input) => {
    expect(TargetSchema.safeParse(input).success).toBe(false);
  });
});

describe('TenantSelectorSchema', () => {
  it('accepts ids and tags', () => {
    expect(TenantSelectorSchema.parse({ ids: ['a', 'b'] })).toEqual({ ids: ['a', 'b'] });
    expect(TenantSelectorSchema.parse({ tags: { region: 'eu' } })).toEqual({ tags: { region: 'eu' } });
    expect(TenantSelectorSchema.parse({ tags: { tier: '' } })).toEqual({ tags: { tier: '' } });
  });

  it('accepts the limits exactly', () => {
    expect(TenantSelectorSchema.safeParse({ ids: ['x'.repeat(200)] }).success).toBe(true);
    expect(TenantSelectorSchema.safeParse({ ids: Array.from({ length: 10_000 }, (_, i) => `t${i}`) }).success).toBe(
      true,
    );
    const tags = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, 'v']));
    expect(TenantSelectorSchema.safeParse({ tags }).success).toBe(true);
    expect(TenantSelectorSchema.safeParse({ tags: { ['k'.repeat(100)]: 'v'.repeat(200) } }).success).toBe(true);
  });

  it.each([
    ['no ids', { ids: [] }],
    ['an empty id', { ids: ['a', ''] }],
    ['an id over 200 characters', { ids: ['x'.repeat(201)] }],
    ['over 10 000 ids', { ids: Array.from({ length: 10_001 }, (_, i) => `t${i}`) }],
    ['a non-string id', { ids: [1] }],
    ['no tags', { tags: {} }],
    ['33 tags', { tags: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }],
    ['an empty tag name', { tags: { '': 'v' } }],
    ['a tag name over 100 characters', { tags: { ['k'.repeat(101)]: 'v' } }],
    ['a tag value over 200 characters', { tags: { k: 'v'.repeat(201) } }],
    ['a non-string tag value', { tags: { k: 1 } }],
    ['both ids and tags', { ids: ['a'], tags: { k: 'v' } }],
    ['an extra field', { ids: ['a'], all: true }],
    ['neither', {}],
  ])('rejects %s', (_label, selector) => {
    expect(TenantSelectorSchema.safeParse(selector).success).toBe(false);
  });
});

describe('MigrateRequestSchema: selectors and targets say what is wrong', () => {
  const issues = (value: unknown) =>
    MigrateRequestSchema.safeParse({ runId: 'r1', target: 'latest', ...(value as object) }).error?.issues.map(
      (i) => `${i.path.join('.')}: ${i.message}`,
    );

  it.each([[{ $where: 'sleep(1)' }], [{ 'tags.tier': 'gold' }], [{ 'a\u0000b': 'x' }]])(
    'refuses tag names that would be MongoDB operators or paths: %j',
    (tags) => {
      expect(issues({ tenants: { tags } })).toEqual([
        'tenants.tags: tag names must not start with "$" or contain "." or control characters',
      ]);
      // Events keep the lenient selector, so runs accepted before the check still read back.
      expect(TenantSelectorSchema.safeParse({ tags }).success).toBe(true);
    },
  );

  it('names the part of a selector that is wrong instead of "Invalid input"', () => {
    expect(issues({ tenants: { ids: { $ne: null } } })).toEqual([
      'tenants: ids: Invalid input: expected array, received object',
    ]);
    expect(issues({ tenants: { ids: ['a'], tags: { k: 'v' } } })).toEqual(['tenants: takes "ids" or "tags", not both']);
    expect(issues({ tenants: {} })).toEqual(['tenants: must be {"ids": [tenantId, …]} or {"tags": {name: value, …}}']);
    expect(issues({ tenants: { ids: Array.from({ length: 10_001 }, (_, i) => `t${i}`) } })).toEqual([
      'tenants: ids: Too big: expected array to have <=10000 items',
    ]);
    expect(issues({ target: 'v2' })).toEqual([
      'target: must be "latest" or a version number (a whole number from 0, or a string of up to 15 digits)',
    ]);
  });
});

describe('MigrateRequestSchema', () => {
  it('accepts a minimal request', () => {
    expect(MigrateRequestSchema.parse({ runId: 'r1', target: 'latest' })).toEqual({ runId: 'r1', target: 'latest' });
  });

  it('accepts a full request and turns a digit-string target into a number', () => {
    const request = MigrateRequestSchema.parse({
      runId: 'deploy-42',
      target: '0012',
      tenants: { tags: { region: 'eu' } },
      dryRun: true,
      requestedBy: 'ci@example.com',
    });
    expect(request).toEqual({
      runId: 'deploy-42',
      target: 12,
      tenants: { tags: { region: 'eu' } },
      dryRun: true,
      requestedBy: 'ci@example.com',
    });
    expect(typeof request.target).toBe('number');
  });

  it('accepts a numeric target and an id selector', () => {
    expect(MigrateRequestSchema.parse({ runId: 'r', target: 3, tenants: { ids: ['acme'] } }).target).toBe(3);
  });

  it.each([
    ['an invalid runId', { runId: 'run.1', target: 'latest' }],
    ['a missing runId', { target: 'latest' }],
    ['a missing target', { runId: 'r' }],
    ['a bad target', { runId: 'r', target: 'newest' }],
    ['an unknown field', { runId: 'r', target: 'latest', force: true }],
    ['a non-boolean dryRun', { runId: 'r', target: 'latest', dryRun: 'yes' }],
    ['a long requestedBy', { runId: 'r', target: 'latest', requestedBy: 'x'.repeat(201) }],
    ['a bad selector', { runId: 'r', target: 'latest', tenants: { ids: [] } }],
    ['null tenants', { runId: 'r', target: 'latest', tenants: null }],
  ])('rejects a request with %s', (_label, request) => {
    expect(MigrateRequestSchema.safeParse(request).success).toBe(false);
  });

  it('names the offending field when it rejects', () => {
    const result = MigrateRequestSchema.safeParse({ runId: 'bad id', target: 'latest', extra: 1 });
    expect(result.success).toBe(false);
    const text = JSON.stringify(result.error?.issues);
    expect(text).toContain('runId must be 1-64 characters');
    expect(text).toContain('extra');
  });

  it.each([null, 'r1', [], 42])('rejects a payload that is not an object: %j', (payload) => {
    expect(MigrateRequestSchema.safeParse(payload).success).toBe(false);
  });
});

describe('a rollback request', () => {
  const issues = (input: unknown) =>
    MigrateRequestSchema.safeParse(input).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];

  it('takes rollback instead of target', () => {
    expect(MigrateRequestSchema.parse({ runId: 'undo', rollback: { runId: 'r1' } })).toEqual({
      runId: 'undo',
      rollback: { runId: 'r1' },
    });
    expect(
      MigrateRequestSchema.parse({ runId: 'undo', rollback: { runId: 'r1', force: true }, dryRun: true }),
    ).toMatchObject({ rollback: { force: true }, dryRun: true });
  });

  it('refuses both, neither, and a malformed run id or field', () => {
    expect(issues({ runId: 'undo', target: 3, rollback: { runId: 'r1' } })).toEqual([
      'rollback: a rollback takes no target: each tenant goes back to the version the run found',
    ]);
    expect(issues({ runId: 'undo' })).toEqual(['target: target is required (or a rollback)']);
    expect(issues({ runId: 'undo', rollback: { runId: 'r 1' } })[0]).toMatch(/^rollback.runId: runId must be/);
    expect(issues({ runId: 'undo', rollback: { runId: 'r1', forced: true } })[0]).toMatch(
      /^rollback: Unrecognized key/,
    );
  });

  it('reads every journal: no trust in the fleet state, no audit', () => {
    expect(issues({ runId: 'undo', rollback: { runId: 'r1' }, trust: 'fleet-state' })).toEqual([
      'rollback: a rollback reads every tenant\'s journal; it takes neither trust: "fleet-state" nor audit',
    ]);
    expect(issues({ runId: 'undo', rollback: { runId: 'r1' }, audit: 'verify', dryRun: true })).toHaveLength(1);
  });

  it('lets any request run changed down files when it says so', () => {
    expect(MigrateRequestSchema.parse({ runId: 'down', target: 2, allowChangedDown: true }).allowChangedDown).toBe(
      true,
    );
  });
});
