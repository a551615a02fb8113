import { Objm } from '@nats-io/obj';
import { BUCKETS } from '@sluice/contracts';
import { BundleDigestMismatchError, BundleUnavailableError, createMigrationSet } from '@sluice/core';
import { loadSqlParser } from '@sluice/sql-parser';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BundleStore, decodeBundle, encodeBundle, openBundleStore } from '../src/bundle-store.js';
import { type Bus, connectBus } from '../src/bus.js';
import { ensureTopology } from '../src/topology.js';

const parser = await loadSqlParser();

const logger = createLogger({ service: 'bundle-test', level: 'silent' });

const setA = createMigrationSet(
  [
    { file: '0001_accounts.sql', sql: 'CREATE TABLE accounts (id int primary key);\n' },
    {
      file: '0002_projects.sql',
      sql: '-- sluice:lock-timeout 2s\nCREATE TABLE projects (id int primary key, account_id int references accounts);\n',
    },
  ],
  parser,
);
const setB = createMigrationSet(
  [{ file: '0001_accounts.sql', sql: 'CREATE TABLE accounts (id bigint primary key);\n' }],
  parser,
);

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

describe('bundle encoding', () => {
  it('round-trips a set: same digest, files, directives and versions', () => {
    const back = decodeBundle(setA.digest, encodeBundle(setA), parser);
    expect(back.digest).toBe(setA.digest);
    expect(back.migrations).toEqual(setA.migrations);
  });

  it('carries down files, so the set rebuilt has the same way back and digest', () => {
    const withDown = createMigrationSet(
      [
        { file: '0001_accounts.sql', sql: 'CREATE TABLE accounts (id int primary key);\n' },
        { file: '0001_accounts.down.sql', sql: '-- sluice:lock-timeout 2s\nDROP TABLE accounts;\n' },
      ],
      parser,
    );
    const back = decodeBundle(withDown.digest, encodeBundle(withDown), parser);
    expect(back.digest).toBe(withDown.digest);
    expect(back.migrations[0]!.down).toEqual(withDown.migrations[0]!.down);
  });

  it('refuses content whose recomputed digest is not its name, naming both digests', () => {
    const error = (() => {
      try {
        decodeBundle(setA.digest, encodeBundle(setB), parser);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(BundleDigestMismatchError);
    expect((error as BundleDigestMismatchError).transient).toBe(false);
    expect((error as BundleDigestMismatchError).code).toBe('bundle_digest_mismatch');
    expect((error as Error).message).toContain(setA.digest);
    expect((error as Error).message).toContain(setB.digest);
  });

  it('ignores the digest a bundle claims for itself', () => {
    const lying = bytes({
      format: 'sluice-migration-bundle/1',
      digest: setA.digest,
      files: setB.migrations.map((m) => ({ file: m.file, sql: m.sql })),
    });
    expect(() => decodeBundle(setA.digest, lying, parser)).toThrow(BundleDigestMismatchError);
  });

  it('refuses one changed byte of SQL', () => {
    const tampered = bytes({
      format: 'sluice-migration-bundle/1',
      digest: setA.digest,
      files: setA.migrations.map((m) => ({
        file: m.file,
        sql: m.version === 2 ? m.sql.replace('account_id int', 'account_id text') : m.sql,
      })),
    });
    expect(() => decodeBundle(setA.digest, tampered, parser)).toThrow(
      /holds migration set [0-9a-f]{64}: it was altered/,
    );
  });

  it.each([
    ['not JSON', new TextEncoder().encode('{nope')],
    ['not UTF-8', new Uint8Array([0xff, 0xfe, 0x00])],
    ['another format', bytes({ format: 'other/1', files: [] })],
    ['a file without text', bytes({ format: 'sluice-migration-bundle/1', files: [{ file: '0001_a.sql' }] })],
    ['an invalid set', bytes({ format: 'sluice-migration-bundle/1', files: [{ file: '0001_a.sql', sql: 'COMMIT;' }] })],
  ])('refuses %s as a permanent mismatch', (_what, data) => {
    expect(() => decodeBundle(setA.digest, data, parser)).toThrow(BundleDigestMismatchError);
  });
});

describe('bundle store against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  let store: BundleStore;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bundle-test' }, logger);
    await ensureTopology(bus.jsm);
    store = await openBundleStore(bus);
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  it('is created by the topology as an Object Store bucket', async () => {
    const status = await (await new Objm(bus.js).open(BUCKETS.bundles)).status();
    expect(status.replicas).toBe(1);
  });

  it('stores a set under its digest once and gives back the same set', async () => {
    expect(await store.put(setA)).toBe('stored');
    expect(await store.put(setA)).toBe('present');
    const back = await store.get(setA.digest);
    expect(back?.digest).toBe(setA.digest);
    expect(back?.migrations.map((m) => m.sql)).toEqual(setA.migrations.map((m) => m.sql));
  });

  it('answers undefined for a digest nobody stored', async () => {
    expect(await store.get('0'.repeat(64))).toBeUndefined();
  });

  it('refuses an object replaced with other content under the same name, and put repairs it', async () => {
    await store.put(setB);
    const os = await new Objm(bus.js).open(BUCKETS.bundles);
    await os.putBlob({ name: setB.digest }, encodeBundle(setA));
    await expect(store.get(setB.digest)).rejects.toThrow(BundleDigestMismatchError);
    expect(await store.put(setB)).toBe('replaced');
    expect((await store.get(setB.digest))?.digest).toBe(setB.digest);
  });

  it('reports an unreachable store as transient', async () => {
    const other = await connectBus({ servers: nats.url, name: 'bundle-test-closed' }, logger);
    const closedStore = await openBundleStore(other);
    await other.nc.close();
    const error = await closedStore.get(setA.digest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BundleUnavailableError);
    expect((error as BundleUnavailableError).transient).toBe(true);
  });
});
