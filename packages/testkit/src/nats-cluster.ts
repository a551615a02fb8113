import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

import { freePort, waitForPort } from './ports.js';

export interface NatsClusterNode {
  name: string;
  port: number;
  url: string;
  /** The node's JetStream store (a total broker loss deletes it while the node is down). */
  storeDir: string;
  /** The node's process id while it runs. */
  readonly pid: number | undefined;
  /** SIGKILL, by PID; resolves once it has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and store. */
  start(): Promise<void>;
}

export interface NatsClusterHandle {
  nodes: NatsClusterNode[];
  /** Every node's client URL, comma-separated (for NATS_URL). */
  url: string;
  /** Resolves once JetStream has a meta leader and every running node answers account info. */
  waitReady(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their stores. */
  dispose(): Promise<void>;
}

/**
 * Starts `size` nats-servers clustered on loopback (routes between all of them), each with
 * JetStream, its own server_name and store directory, and waits for the JetStream meta leader.
 */
export async function startNatsCluster(options: { size?: number; binary?: string } = {}): Promise<NatsClusterHandle> {
  const size = options.size ?? 3;
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  const base = await mkdtemp(path.join(tmpdir(), 'sluice-nats-cluster-'));
  const ports = await Promise.all(
    Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort() })),
  );
  const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`).join(',');
  const nodes: NatsClusterNode[] = ports.map((p, i) => {
    const name = `sluice-n${i + 1}`;
    let child: ChildProcess | undefined;
    const node: NatsClusterNode = {
      name,
      port: p.client,
      url: `nats://127.0.0.1:${p.client}`,
      storeDir: path.join(base, name),
      get pid() {
        return child?.pid;
      },
      async start() {
        const args = [
          '-a',
          '127.0.0.1',
          '-p',
          String(p.client),
          '-n',
          name,
          '-js',
          '-sd',
          node.storeDir,
          '--cluster_name',
          'sluice-test',
          '-cluster',
          `nats://127.0.0.1:${p.route}`,
          '-routes',
          routes,
        ];
        const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        proc.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
        const failed = new Promise<never>((_, reject) => {
          proc.once('error', (error) => reject(new Error(`cannot start ${binary}: ${error.message}`)));
          proc.once('exit', (code) => reject(new Error(`${binary} (${name}) exited with ${code}: ${stderr}`)));
        });
        failed.catch(() => undefined);
        child = proc;
        await Promise.race([waitForPort(p.client, 10_000), failed]);
      },
      async kill() {
        const proc = child;
        child = undefined;
        if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        process.kill(proc.pid!, 'SIGKILL');
        await exited;
      },
    };
    return node;
  });
  const url = nodes.map((n) => n.url).join(',');
  const handle: NatsClusterHandle = {
    nodes,
    url,
    async waitReady(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (const node of nodes.filter((n) => n.pid !== undefined)) {
        for (;;) {
          try {
            const nc = await connect({ servers: node.url, timeout: 2_000 });
            try {
              await (await jetstreamManager(nc, { timeout: 2_000 })).getAccountInfo();
              break;
            } finally {
              await nc.close();
            }
          } catch (error) {
            if (Date.now() > deadline)
              throw new Error(
                `JetStream on ${node.name} not ready after ${timeoutMs} ms: ${(error as Error).message}`,
                { cause: error },
              );
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        }
      }
    },
    async dispose() {
      for (const n of nodes) await n.kill();
      await rm(base, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await handle.waitReady();
  } catch (error) {
    await handle.dispose();
    throw error;
  }
  return handle;
}
