// The compose stack's registry seed (one-shot): one row per tenant database that
// create-fleet.sh made on each Postgres host, written to the registry SLUICE_REGISTRY names —
// the file the planner reads, a MongoDB collection or a DynamoDB table (created when missing).
// Runs in the Sluice image, so the drivers come from the registry package's dependencies.
// Reads: SLUICE_REGISTRY, SLUICE_TENANTS_FILE, MONGODB_URI, SLUICE_TENANTS_COLLECTION,
// SLUICE_TENANTS_TABLE (and the AWS SDK's own variables), SLUICE_DEMO_HOSTS (host:port,...),
// TENANTS_PER_HOST, PGUSER.
import { rename, writeFile } from 'node:fs/promises';

const env = process.env;
const kind = env.SLUICE_REGISTRY ?? 'file';
const hosts = (env.SLUICE_DEMO_HOSTS ?? 'pg-a:5432,pg-b:5432')
  .split(',')
  .map((h) => h.trim())
  .filter(Boolean);
const perHost = Number(env.TENANTS_PER_HOST ?? 50);
const user = encodeURIComponent(env.PGUSER ?? 'postgres');

// Passwords stay out of the registry: executors take PGPASSWORD from their environment.
const rows = hosts.flatMap((host) =>
  Array.from({ length: perHost }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return {
      tenantId: `${host.split(':')[0]}-${n}`,
      databaseUrl: `postgres://${user}@${host}/tenant_${n}`,
      tags: { host: host.split(':')[0], tier: i % 10 === 0 ? 'canary' : 'standard' },
    };
  }),
);

/** Retries a registry server that is still starting, then fails naming what to start. */
async function retry(what, hint, fn) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= 30) throw new Error(`${what} is not reachable after 60 s (${error.message}); ${hint}`);
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

if (kind === 'file') {
  const file = env.SLUICE_TENANTS_FILE ?? '/fleet/tenants.json';
  await writeFile(`${file}.tmp`, JSON.stringify(rows, null, 1));
  await rename(`${file}.tmp`, file);
} else if (kind === 'mongodb') {
  const { MongoClient } = await import('mongodb');
  const client = new MongoClient(env.MONGODB_URI ?? 'mongodb://mongodb:27017/sluice', {
    serverSelectionTimeoutMS: 2_000,
  });
  await retry('MongoDB at MONGODB_URI', 'start the stack with --profile mongodb', () => client.connect());
  const tenants = client.db().collection(env.SLUICE_TENANTS_COLLECTION ?? 'tenants');
  await tenants.createIndex({ tenantId: 1 }, { unique: true });
  await tenants.bulkWrite(
    rows.map((row) => ({ replaceOne: { filter: { tenantId: row.tenantId }, replacement: row, upsert: true } })),
  );
  await client.close();
} else if (kind === 'dynamodb') {
  const { CreateTableCommand, DescribeTableCommand, DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { BatchWriteCommand, DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
  const table = env.SLUICE_TENANTS_TABLE ?? 'tenants';
  const base = new DynamoDBClient({});
  const exists = await retry('DynamoDB at AWS_ENDPOINT_URL_DYNAMODB', 'start the stack with --profile dynamodb', () =>
    base.send(new DescribeTableCommand({ TableName: table })).then(
      () => true,
      (error) => (error.name === 'ResourceNotFoundException' ? false : Promise.reject(error)),
    ),
  );
  if (!exists) {
    await base.send(
      new CreateTableCommand({
        TableName: table,
        KeySchema: [{ AttributeName: 'tenantId', KeyType: 'HASH' }],
        AttributeDefinitions: [{ AttributeName: 'tenantId', AttributeType: 'S' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  }
  const client = DynamoDBDocumentClient.from(base);
  for (let i = 0; i < rows.length; i += 25) {
    let items = { [table]: rows.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) };
    while (items && Object.keys(items).length > 0)
      items = (await client.send(new BatchWriteCommand({ RequestItems: items }))).UnprocessedItems;
  }
  base.destroy();
} else {
  throw new Error(`SLUICE_REGISTRY must be file, mongodb or dynamodb, got "${kind}"`);
}
console.log(`registry ${kind}: ${rows.length} tenants on ${hosts.join(', ')}`);
