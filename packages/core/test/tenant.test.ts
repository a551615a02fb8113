import { describe, expect, it } from 'vitest';

import { InvalidTenantError } from '../src/errors.js';
import { matchesSelector, parseTenantRow, redactDatabaseUrl } from '../src/tenant.js';

const SECRET = 's3cr3t-Pa55';

function invalid(row: unknown): InvalidTenantError {
  try {
    parseTenantRow(row);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidTenantError);
    return error as InvalidTenantError;
  }
  throw new Error('expected parseTenantRow to throw');
}

describe('parseTenantRow', () => {
  it('turns a valid row into a tenant without the password', () => {
    const tenant = parseTenantRow({
      tenantId: 'acme',
      databaseUrl: `postgres://app:${SECRET}@db1.internal:6543/acme_prod?sslmode=require`,
      tags: { region: 'eu', tier: 'gold' },
      status: 'suspended',
      ignored: 'extra field',
    });
    expect(tenant).toEqual({
      tenantId: 'acme',
      databaseUrl: 'postgres://app@db1.internal:6543/acme_prod?sslmode=require',
      host: 'db1.internal:6543',
      database: 'acme_prod',
      tags: { region: 'eu', tier: 'gold' },
      status: 'suspended',
    });
    expect(JSON.stringify(tenant)).not.toContain(SECRET);
  });

  it('defaults the port to 5432, the status to active and the tags to none', () => {
    const tenant = parseTenantRow({ tenantId: 't1', databaseUrl: 'postgresql://app@10.0.0.5/t1' });
    expect(tenant.host).toBe('10.0.0.5:5432');
    expect(tenant.status).toBe('active');
    expect(tenant.tags).toEqual({});
    expect(parseTenantRow({ tenantId: 't1', databaseUrl: 'postgres://h/d', status: null, tags: null })).toMatchObject({
      status: 'active',
      tags: {},
    });
  });

  it('keeps an explicit 5432 and handles IPv6 hosts', () => {
    expect(parseTenantRow({ tenantId: 'a', databaseUrl: 'postgres://u@h:5432/d' }).host).toBe('h:5432');
    expect(parseTenantRow({ tenantId: 'a', databaseUrl: `postgres://u:${SECRET}@[::1]:6000/d` })).toMatchObject({
      host: '[::1]:6000',
      databaseUrl: 'postgres://u@[::1]:6000/d',
    });
  });

  it('removes a password even without a user name, and one with encoded characters', () => {
    expect(parseTenantRow({ tenantId: 'a', databaseUrl: `postgres://:${SECRET}@h/d` }).databaseUrl).toBe(
      'postgres://h/d',
    );
    const tenant = parseTenantRow({ tenantId: 'a', databaseUrl: 'postgres://u:p%40ss%3Aw0rd@h/d' });
    expect(tenant.databaseUrl).toBe('postgres://u@h/d');
  });

  it('decodes the database name', () => {
    expect(parseTenantRow({ tenantId: 'a', databaseUrl: 'postgres://h/my%20db' }).database).toBe('my db');
  });

  it.each([
    ['a string', 'postgres://h/d'],
    ['null', null],
    ['an array', [{ tenantId: 'a' }]],
  ])('rejects a row that is %s', (_label, row) => {
    expect(invalid(row).message).toMatch(/not an object/);
  });

  it.each([{}, { tenantId: '' }, { tenantId: '   ' }, { tenantId: 42 }])(
    'rejects a row without a tenantId: %j',
    (row) => {
      expect(invalid({ databaseUrl: 'postgres://h/d', ...row }).message).toMatch(/no tenantId/);
    },
  );

  it('rejects a tenantId longer than 200 characters', () => {
    expect(invalid({ tenantId: 'x'.repeat(201), databaseUrl: 'postgres://h/d' }).message).toMatch(/200/);
    expect(parseTenantRow({ tenantId: 'x'.repeat(200), databaseUrl: 'postgres://h/d' }).tenantId).toHaveLength(200);
  });

  it.each([
    ['CR/LF', 'evil\r\nNats-Msg-Id: x', /printable ASCII/],
    ['a space', 'two words', /printable ASCII/],
    ['non-ASCII', 'tenant-ü', /printable ASCII/],
    ['wildcards', 'tenant.*.>', /\* or >/],
    ['2,000 characters', 'x'.repeat(2_000), /200/],
  ])('rejects a tenantId with %s, without echoing it', (_, tenantId, reason) => {
    const message = invalid({ tenantId, databaseUrl: 'postgres://h/d' }).message;
    expect(message).toMatch(reason);
    expect(message).not.toContain(tenantId);
  });

  it.each(['postgres://u@h>st:5432/d', 'postgres://u@h%3Est:5432/d', 'postgres://u@h*st/d'])(
    'rejects a host that is not a host name or address: %s',
    (databaseUrl) => {
      expect(invalid({ tenantId: 'a', databaseUrl }).message).toMatch(/malformed|host/);
    },
  );

  it('accepts punctuation that is neither whitespace nor a wildcard, and IPv6 hosts', () => {
    expect(parseTenantRow({ tenantId: 'acme:eu/1#x', databaseUrl: 'postgres://u@[::1]:5432/d' }).host).toBe(
      '[::1]:5432',
    );
  });

  it('rejects a missing databaseUrl', () => {
    expect(invalid({ tenantId: 'a' }).message).toBe('tenant a has no databaseUrl');
    expect(invalid({ tenantId: 'a', databaseUrl: '' }).message).toBe('tenant a has no databaseUrl');
  });

  it.each([
    [`postgres://u:${SECRET}@h:99999/d`, /malformed/],
    [`//u:${SECRET}@h/d`, /malformed/],
    [`app:${SECRET}@h/d`, /not postgres:\/\/ \(app:\)/],
    [`postgres://u:${SECRET}@h name/d`, /malformed/],
    [`mysql://u:${SECRET}@h/d`, /not postgres:\/\/ \(mysql:\)/],
    [`https://u:${SECRET}@h/d`, /not postgres/],
    [`postgres://u:${SECRET}@h:5432`, /without a host or a database name/],
    [`postgres://u:${SECRET}@h:5432/`, /without a host or a database name/],
    [`postgres://u:${SECRET}@h/a/b`, /without a host or a database name/],
    [`postgres:///d`, /without a host or a database name/],
  ])('rejects %s without leaking the password', (databaseUrl, reason) => {
    const error = invalid({ tenantId: 'acme', databaseUrl });
    expect(error.message).toMatch(reason);
    expect(error.message).toContain('acme');
    expect(error.message).not.toContain(SECRET);
    expect(JSON.stringify(error.toOutcomeError())).not.toContain(SECRET);
    expect(error.code).toBe('invalid_tenant');
    expect(error.transient).toBe(false);
  });

  it.each(['deleted', 'ACTIVE', 1, true])('rejects the status %j', (status) => {
    expect(invalid({ tenantId: 'a', databaseUrl: 'postgres://h/d', status }).message).toMatch(/unknown status/);
  });

  it('truncates a long bad status in the message', () => {
    const message = invalid({ tenantId: 'a', databaseUrl: 'postgres://h/d', status: 'z'.repeat(500) }).message;
    expect(message).toMatch(/unknown status .*z{30}/);
    expect(message).not.toContain('z'.repeat(41));
    expect(message.length).toBeLessThan(120);
  });

  it.each([
    ['a string', 'region=eu', /not a string map/],
    ['an array', ['eu'], /not a string map/],
    ['a number value', { region: 1 }, /tag "region" that is not a string/],
    ['a null value', { region: null }, /tag "region" that is not a string/],
  ])('rejects tags that are %s', (_label, tags, reason) => {
    expect(invalid({ tenantId: 'a', databaseUrl: 'postgres://h/d', tags }).message).toMatch(reason);
  });
});

describe('redactDatabaseUrl', () => {
  it('removes the password and keeps the rest', () => {
    expect(redactDatabaseUrl(`postgres://app:${SECRET}@db:5432/acme?sslmode=require`)).toBe(
      'postgres://app@db:5432/acme?sslmode=require',
    );
  });

  it('returns a URL without a password unchanged', () => {
    for (const url of ['postgres://app@db:5432/acme', 'postgres://db/acme', 'postgres://app:@db/acme']) {
      expect(redactDatabaseUrl(url)).toBe(url);
    }
  });

  it('redacts a URL that does not parse', () => {
    const redacted = redactDatabaseUrl(`postgres://app:${SECRET}@db:notaport/acme`);
    expect(redacted).toBe('postgres://app@db:notaport/acme');
    expect(redacted).not.toContain(SECRET);
  });

  it('leaves text that is not a URL unchanged', () => {
    expect(redactDatabaseUrl('not a url')).toBe('not a url');
    expect(redactDatabaseUrl('')).toBe('');
  });
});

describe('matchesSelector', () => {
  const tenant = { tenantId: 'acme', tags: { region: 'eu', tier: 'gold' } };

  it('matches everything without a selector', () => {
    expect(matchesSelector(tenant)).toBe(true);
    expect(matchesSelector(tenant, undefined)).toBe(true);
  });

  it('matches by id', () => {
    expect(matchesSelector(tenant, { ids: ['other', 'acme'] })).toBe(true);
    expect(matchesSelector(tenant, { ids: ['other'] })).toBe(false);
    expect(matchesSelector(tenant, { ids: ['ACME'] })).toBe(false);
    expect(matchesSelector(tenant, { ids: [] })).toBe(false);
  });

  it('matches when every selector tag matches', () => {
    expect(matchesSelector(tenant, { tags: { region: 'eu' } })).toBe(true);
    expect(matchesSelector(tenant, { tags: { region: 'eu', tier: 'gold' } })).toBe(true);
    expect(matchesSelector(tenant, { tags: { region: 'eu', tier: 'silver' } })).toBe(false);
    expect(matchesSelector(tenant, { tags: { env: 'prod' } })).toBe(false);
    expect(matchesSelector({ tenantId: 'x', tags: {} }, { tags: { region: 'eu' } })).toBe(false);
  });
});

describe('hardening found by review', () => {
  it('reports a malformed percent-encoding in the database name as an invalid tenant', () => {
    expect(invalid({ tenantId: 'a', databaseUrl: `postgres://u:${SECRET}@h/db%ZZ` }).message).not.toContain(SECRET);
  });

  it('drops passwords passed as query parameters', () => {
    const t = parseTenantRow({
      tenantId: 'a',
      databaseUrl: `postgres://u@h/db?password=${SECRET}&sslmode=require&SSLPASSWORD=${SECRET}`,
    });
    expect(t.databaseUrl).not.toContain(SECRET);
    expect(t.databaseUrl).toContain('sslmode=require');
  });

  it('redacts up to the last @ when the URL does not parse', () => {
    expect(redactDatabaseUrl('postgres://u:se@cret@host:bad/db')).toBe('postgres://u@host:bad/db');
  });

  it('folds the host name to lower case so one server is one flow-control key', () => {
    expect(parseTenantRow({ tenantId: 'a', databaseUrl: 'postgres://u@DB.Example.COM/db' }).host).toBe(
      'db.example.com:5432',
    );
  });
});
