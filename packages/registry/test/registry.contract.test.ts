import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, startTcpMeter } from '@sluice/testkit';
import { type DynamoServer, localClientConfig, startDynamoServer } from '@sluice/testkit/dynamodb-server';
import { type MongoServer, startMongoServer } from '@sluice/testkit/mongodb-server';
import { afterAll, beforeAll } from 'vitest';

import { createDynamoRegistry } from '../src/dynamodb.js';
import { createFileRegistry } from '../src/file.js';
import { createMemoryRegistry } from '../src/memory.js';
import { createMongoRegistry } from '../src/mongodb.js';
import { type ContractSubject, describeRegistryContract, PAGE } from './registry-contract.js';
import { serveThroughFifo } from './support/fifo-file.js';

let dir: string;
let mongo: MongoServer;
let dynamo: DynamoServer;
// An address nothing listens on, for the "unreachable" cases.
let deadPort: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'sluice-registry-'));
  [mongo, dynamo, deadPort] = await Promise.all([startMongoServer(), startDynamoServer(), freePort()]);
});

afterAll(async () => {
  await mongo?.stop();
  await dynamo?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const fileSubject = (format: 'json' | 'ndjson'): ContractSubject => ({
  name: `file (${format === 'json' ? 'JSON array' : 'NDJSON'})`,
  holds: { untypedIds: true, nonObjects: true, duplicateIds: true },
  // Served through a named pipe, so that what the adapter pulled can be counted.
  async open(rows) {
    const content =
      format === 'json'
        ? `[\n${rows.map((r) => JSON.stringify(r)).join(',\n')}\n]\n`
        : rows.map((r) => `${JSON.stringify(r)}\n`).join('');
    const fifo = await serveThroughFifo(path.join(dir, `tenants-${format}.fifo`), content);
    return { registry: createFileRegistry(fifo.path), served: fifo.served, close: fifo.close };
  },
  unreachable: () => createFileRegistry(path.join(dir, 'no-such-file.ndjson')),
});

const subjects: ContractSubject[] = [
  fileSubject('json'),
  fileSubject('ndjson'),
  {
    name: 'memory',
    holds: { untypedIds: true, nonObjects: true, duplicateIds: true },
    open(rows) {
      let served = 0;
      const counted = {
        *[Symbol.iterator]() {
          for (const row of rows) {
            served += 1;
            yield row;
          }
        },
      };
      return Promise.resolve({
        registry: createMemoryRegistry(counted),
        served: () => served,
        close: () => Promise.resolve(),
      });
    },
  },
  {
    name: `mongodb (${process.env.MONGODB_URI ? 'mongod at MONGODB_URI' : 'CongoServer'})`,
    holds: { untypedIds: true, nonObjects: false, duplicateIds: true },
    async open(rows) {
      const collection = await mongo.seed(rows as Array<Record<string, unknown>>);
      const meter = await startTcpMeter(mongo);
      const registry = createMongoRegistry({
        uri: mongo.uri(mongo.database, '', meter.port),
        collection,
        pageSize: PAGE,
      });
      return { registry, served: meter.served, close: meter.close };
    },
    unreachable: () =>
      createMongoRegistry({
        uri: `mongodb://127.0.0.1:${deadPort}/registry?directConnection=true&serverSelectionTimeoutMS=300`,
        collection: 'tenants',
        pageSize: PAGE,
      }),
  },
  {
    name: 'dynamodb (dynalite, 3 scan segments)',
    holds: { untypedIds: false, nonObjects: false, duplicateIds: false },
    async open(rows) {
      const table = await dynamo.createTable();
      await dynamo.seed(table, rows as Array<Record<string, unknown>>);
      const meter = await startTcpMeter({ host: '127.0.0.1', port: dynamo.port });
      const registry = createDynamoRegistry(
        { table, segments: 3, pageSize: PAGE, throttleAttempts: 8 },
        { client: localClientConfig(`http://127.0.0.1:${meter.port}`) },
      );
      return { registry, served: meter.served, close: meter.close };
    },
    unreachable: () =>
      createDynamoRegistry(
        { table: 'tenants', segments: 2, pageSize: PAGE, throttleAttempts: 8 },
        { client: { ...localClientConfig(`http://127.0.0.1:${deadPort}`), maxAttempts: 2 } },
      ),
  },
];

for (const subject of subjects) describeRegistryContract(subject);
