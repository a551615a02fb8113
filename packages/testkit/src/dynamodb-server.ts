import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';

import { CreateTableCommand, DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
  DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';

type Dynalite = (options: { createTableMs?: number; deleteTableMs?: number; updateTableMs?: number }) => Server;
const dynalite = createRequire(import.meta.url)('dynalite') as Dynalite;

/** What a client needs to talk to a local DynamoDB: fake credentials, a region, the endpoint. */
export const localClientConfig = (endpoint: string): DynamoDBClientConfig => ({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});

export interface DynamoServer {
  port: number;
  endpoint: string;
  /** Creates a table keyed by `tenantId` (random name unless given) and returns its name. */
  createTable(name?: string): Promise<string>;
  /** Writes rows with BatchWriteItem, 25 to a request. */
  seed(table: string, rows: readonly Record<string, unknown>[]): Promise<void>;
  stop(): Promise<void>;
}

/** dynalite, in process and in memory, on a free loopback port (or the one given, to restart it). */
export async function startDynamoServer(port = 0): Promise<DynamoServer> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  const endpoint = `http://127.0.0.1:${bound}`;
  const base = new DynamoDBClient(localClientConfig(endpoint));
  const client = DynamoDBDocumentClient.from(base);
  return {
    port: bound,
    endpoint,
    async createTable(name = `tenants_${randomBytes(4).toString('hex')}`) {
      await base.send(
        new CreateTableCommand({
          TableName: name,
          KeySchema: [{ AttributeName: 'tenantId', KeyType: 'HASH' }],
          AttributeDefinitions: [{ AttributeName: 'tenantId', AttributeType: 'S' }],
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      return name;
    },
    async seed(table, rows) {
      let next = 0;
      // Eight BatchWriteItem requests in flight: a 100,000-row table fills in seconds.
      const worker = async () => {
        while (next < rows.length) {
          const i = next;
          next += 25;
          let items: BatchWriteCommandInput['RequestItems'] = {
            [table]: rows.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })),
          };
          while (items && Object.keys(items).length > 0) {
            const out: BatchWriteCommandOutput = await client.send(new BatchWriteCommand({ RequestItems: items }));
            items = out.UnprocessedItems;
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    },
    async stop() {
      base.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
