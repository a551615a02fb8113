import { describe, expect, it } from 'vitest';

import { SafeDatabaseUrlSchema, TenantTaskSchema } from '../src/task.js';
import { tenantTask } from './tenant-task.js';

describe('SafeDatabaseUrlSchema', () => {
  it.each([
    'postgres://app@db:5432/acme',
    'postgresql://db/acme',
    'postgres://app@[::1]:6543/acme?sslmode=require',
    'postgres://app:@db/acme',
  ])('accepts %s', (url) => {
    expect(SafeDatabaseUrlSchema.parse(url)).toBe(url);
  });

  it.each(['postgres://app:secret@db:5432/acme', 'postgresql://:secret@db/acme', 'postgres://app:p%40ss@db/acme'])(
    'refuses %s, which holds a password',
    (url) => {
      const result = SafeDatabaseUrlSchema.safeParse(url);
      expect(result.success).toBe(false);
      expect(result.error?.issues[0]?.message).toBe('databaseUrl must be a postgres:// URL without a password');
    },
  );

  it.each([
    'mysql://app@db/acme',
    'https://db/acme',
    'db:5432/acme',
    'not a url',
    '',
    `postgres://db/${'x'.repeat(2048)}`,
  ])('refuses %j', (url) => {
    expect(SafeDatabaseUrlSchema.safeParse(url).success).toBe(false);
  });
});

describe('TenantTaskSchema', () => {
  const task = tenantTask();

  it('accepts a valid task', () => {
    expect(TenantTaskSchema.parse(task)).toEqual(task);
  });

  it.each([
    ['a password in the URL', { databaseUrl: 'postgres://app:pw@db/acme' }],
    ['target latest', { target: 'latest' }],
    ['a string target', { target: '4' }],
    ['a short digest', { digest: 'a'.repeat(63) }],
    ['an upper-case digest', { digest: 'A'.repeat(64) }],
    ['an empty host', { host: '' }],
    ['an empty tenantId', { tenantId: '' }],
    ['a bad runId', { runId: 'run 1' }],
  ])('refuses a task with %s', (_label, patch) => {
    expect(TenantTaskSchema.safeParse({ ...task, ...patch }).success).toBe(false);
  });
});
