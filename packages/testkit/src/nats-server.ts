import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { freePort, waitForPort } from './ports.js';

export interface NatsServerHandle {
  url: string;
  /** The server's process id while it runs. */
  readonly pid: number | undefined;
  port: number;
  storeDir: string;
  /** SIGTERM, wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: nothing flushed), wait for exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port and store (after stop). */
  restart(): Promise<void>;
  /** Stops it and removes its store. */
  dispose(): Promise<void>;
}

/**
 * Starts a private `nats-server` with JetStream on a free loopback port, so a test never shares
 * streams with another test or with the machine's own server.
 */
export async function startNatsServer(options: { binary?: string; args?: string[] } = {}): Promise<NatsServerHandle> {
  const port = await freePort();
  const storeDir = await mkdtemp(path.join(tmpdir(), 'sluice-nats-'));
  const binary = options.binary ?? process.env.NATS_SERVER_BIN ?? 'nats-server';
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const proc = spawn(
      binary,
      ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, ...(options.args ?? [])],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (error) =>
        reject(new Error(`cannot start ${binary}: ${error.message} (install nats-server or set NATS_SERVER_BIN)`)),
      );
      proc.once('exit', (code) => reject(new Error(`${binary} exited with ${code}: ${stderr}`)));
    });
    child = proc;
    await Promise.race([waitForPort(port, 10_000), failed]);
    failed.catch(() => undefined);
  };

  const stop = async (signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    port,
    storeDir,
    stop: () => stop(),
    kill: () => stop('SIGKILL'),
    restart: start,
    async dispose() {
      await stop();
      await rm(storeDir, { recursive: true, force: true });
    },
  };
}
