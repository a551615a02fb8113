import { randomBytes } from 'node:crypto';

import { congodb } from '@push.rocks/smartmongo';
import { MongoClient } from 'mongodb';

import { freePort } from './ports.js';

export interface MongoServer {
  /** Where the server listens (what a relay in front of it connects to). */
  host: string;
  port: number;
  /** A connection string to `database` on this server, with `extra` query options. */
  uri(database: string, extra?: string, port?: number): string;
  /** A database name no other test uses. */
  database: string;
  /** Inserts rows into a collection (random name unless given) and returns its name. */
  seed(rows: readonly Record<string, unknown>[], collection?: string): Promise<string>;
  /** Drops what this test created and stops a server it started. */
  stop(): Promise<void>;
}

/**
 * A real `mongod` when MONGODB_URI is set (a single-host mongodb:// URI; the test uses a database of
 * its own there and drops it), otherwise @push.rocks/smartmongo's CongoServer in process on a free
 * loopback port (or the one given, to restart it). CongoServer speaks the wire protocol through
 * the official driver, but it enforces no unique index and has no change streams.
 */
export async function startMongoServer(port?: number, external = process.env.MONGODB_URI): Promise<MongoServer> {
  let target: { host: string; port: number; auth: string; query: string };
  let congo: congodb.CongoServer | undefined;
  if (external) {
    const match = /^mongodb:\/\/(?:([^@/]*)@)?([^:/,?]+)(?::(\d+))?(?:\/[^?]*)?(?:\?(.*))?$/.exec(external);
    if (!match) throw new Error('MONGODB_URI for the tests must be a single-host mongodb:// URI');
    target = {
      auth: match[1] ? `${match[1]}@` : '',
      host: match[2]!,
      port: Number(match[3] ?? 27017),
      query: match[4] ?? '',
    };
  } else {
    const listen = port ?? (await freePort());
    congo = new congodb.CongoServer({ host: '127.0.0.1', port: listen, storage: 'memory' });
    await congo.start();
    target = { auth: '', host: '127.0.0.1', port: listen, query: '' };
  }
  const database = external ? `sluice_registry_test_${randomBytes(4).toString('hex')}` : 'registry';
  const uri = (db: string, extra = '', via = target.port) => {
    const query = [target.query, 'directConnection=true', extra].filter(Boolean).join('&');
    return `mongodb://${target.auth}${via === target.port ? target.host : '127.0.0.1'}:${via}/${db}?${query}`;
  };
  const client = new MongoClient(uri(database));
  return {
    host: target.host,
    port: target.port,
    database,
    uri,
    async seed(rows, collection = `tenants_${randomBytes(4).toString('hex')}`) {
      // insertMany adds _id to the documents it is given: give it copies.
      for (let i = 0; i < rows.length; i += 1_000)
        await client
          .db(database)
          .collection(collection)
          .insertMany(rows.slice(i, i + 1_000).map((r) => ({ ...r })));
      return collection;
    },
    async stop() {
      if (external) await client.db(database).dropDatabase();
      await client.close();
      await congo?.stop();
    },
  };
}
