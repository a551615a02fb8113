import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

import { apiAuthEnv, choosesApiAuth } from './api-token.js';
import { MIGRATIONS_DIR, REPO_ROOT, serviceEntry } from './paths.js';

export type ServiceName = 'planner' | 'executor' | 'reporter';

export interface ServiceProcess {
  name: ServiceName;
  pid: number;
  /** Every log line so far (JSON objects, or `{ raw }` for anything else). */
  readonly logs: Array<Record<string, unknown>>;
  /** The raw text of every line so far (stdout and stderr). */
  readonly output: string[];
  /** Resolves with the first log line that matches. */
  waitForLog(
    predicate: (line: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** SIGTERM; resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL. */
  kill(): Promise<void>;
  readonly exited: Promise<number | null>;
}

/**
 * Starts `node services/<name>/dist/main.js` as a separate process with the given environment
 * (on top of PATH and HOME only, so the machine's settings do not leak in), and waits until it
 * logs that it is ready.
 */
export async function startService(
  name: ServiceName,
  env: Record<string, string>,
  options: {
    waitReady?: boolean;
    readyTimeoutMs?: number;
    /** Another entry script for the service (a benchmark's variant), and node options before it. */
    entry?: string;
    nodeArgs?: string[];
  } = {},
): Promise<ServiceProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), options.entry ?? serviceEntry(name)],
    {
      cwd: REPO_ROOT,
      // Any free port unless the test names one: services default to fixed ports (9464, 8080)
      // that two services, or two tests, on one machine would fight over.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        LOG_LEVEL: 'info',
        SLUICE_METRICS_PORT: '0',
        SLUICE_REPORTER_PORT: '0',
        // The reporter refuses to start without API tokens: the test token, unless the test chose.
        ...(name === 'reporter' && !choosesApiAuth(env) ? apiAuthEnv() : {}),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  const output: string[] = [];
  const waiters = new Set<{
    predicate: (line: Record<string, unknown>) => boolean;
    resolve: (line: Record<string, unknown>) => void;
  }>();
  const onLine = (text: string): void => {
    output.push(text);
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { raw: text };
    }
    logs.push(line);
    for (const waiter of waiters) {
      if (waiter.predicate(line)) {
        waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  };
  createInterface({ input: child.stdout! }).on('line', onLine);
  createInterface({ input: child.stderr! }).on('line', onLine);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitForLog: ServiceProcess['waitForLog'] = (predicate, timeoutMs = 15_000) => {
    const seen = logs.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `${name} did not log the expected line within ${timeoutMs} ms; last lines:\n${output.slice(-15).join('\n')}`,
          ),
        );
      }, timeoutMs);
      const clear = (): void => clearTimeout(timer);
      void exited.then(clear);
      const original = waiter.resolve;
      waiter.resolve = (line) => {
        clear();
        original(line);
      };
    });
  };

  const handle: ServiceProcess = {
    name,
    pid: child.pid!,
    logs,
    output,
    exited,
    waitForLog,
    async stop(timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  if (options.waitReady ?? true) {
    const ready = waitForLog(
      (l) => typeof l.msg === 'string' && l.msg.endsWith(' ready'),
      options.readyTimeoutMs ?? 20_000,
    );
    const early = exited.then((code) => {
      throw new Error(`${name} exited with ${code} before it was ready:\n${output.slice(-20).join('\n')}`);
    });
    try {
      await Promise.race([ready, early]);
    } catch (error) {
      // Never leave a half-started service behind.
      await handle.kill();
      throw error;
    }
    early.catch(() => undefined);
  }
  return handle;
}

/**
 * The environment of a test fleet's services: NATS, a file registry, the migrations, a reporter
 * on any free port, and the local Postgres user. `extra` adds or overrides variables.
 */
export function fleetServiceEnv(
  options: { natsUrl: string; registryFile: string; migrationsDir?: string },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    NATS_URL: options.natsUrl,
    SLUICE_MIGRATIONS_DIR: options.migrationsDir ?? MIGRATIONS_DIR,
    SLUICE_REGISTRY: 'file',
    SLUICE_TENANTS_FILE: options.registryFile,
    SLUICE_REPORTER_PORT: '0',
    PGUSER: 'postgres',
    ...extra,
  };
}
