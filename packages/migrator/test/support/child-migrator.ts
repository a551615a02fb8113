import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import type { ChildConfig, ChildEvent } from './migrate-child.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const SCRIPT = path.join(here, 'migrate-child.ts');

export interface ChildMigrator {
  pid: number;
  /** The `ready` line: connected, and the pid of its Postgres backend. */
  ready: Promise<Extract<ChildEvent, { event: 'ready' }>>;
  /** The final line (`done` or `error`); rejects if the process exits without one. */
  result: Promise<Extract<ChildEvent, { event: 'done' | 'error' }>>;
  exited: Promise<number | null>;
  /** Releases a child started with `waitForGo`. */
  go(): void;
  kill(signal: NodeJS.Signals): void;
}

const running = new Set<ChildProcess>();

/** Starts `node --import tsx migrate-child.ts` with the given configuration. */
export function startChildMigrator(config: ChildConfig): ChildMigrator {
  // tsx as a loader of this very node process, resolved from the repo's node_modules (not the tsx
  // CLI, which would put a second process between us and the migrator and make SIGKILL miss it).
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(config)], {
    cwd: here,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  running.add(child);
  const output: string[] = [];
  const events: ChildEvent[] = [];
  const listeners = new Set<() => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    output.push(line);
    try {
      events.push(JSON.parse(line) as ChildEvent);
    } catch {
      return;
    }
    for (const listener of listeners) listener();
  });
  createInterface({ input: child.stderr }).on('line', (line) => output.push(line));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );

  function next<K extends ChildEvent['event']>(kinds: K[]): Promise<Extract<ChildEvent, { event: K }>> {
    const find = () =>
      events.find((e): e is Extract<ChildEvent, { event: K }> => (kinds as string[]).includes(e.event));
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = find();
        if (found) {
          listeners.delete(check);
          resolve(found);
        }
      };
      listeners.add(check);
      check();
      void exited.then((code) => {
        // stdout may still hold the line when 'exit' fires; give readline a turn.
        setTimeout(() => {
          check();
          if (listeners.has(check)) {
            listeners.delete(check);
            reject(new Error(`child exited (${code}) before ${kinds.join('/')}:\n${output.slice(-20).join('\n')}`));
          }
        }, 100);
      });
    });
  }

  const ready = next(['ready']);
  const result = next(['done', 'error']);
  // A killed child never reports; a test that does not ask must not see an unhandled rejection.
  void ready.catch(() => undefined);
  void result.catch(() => undefined);
  return {
    pid: child.pid!,
    ready,
    result,
    exited,
    go: () => child.stdin.write('go\n'),
    kill: (signal) => child.kill(signal),
  };
}

/** For afterEach: no child outlives its test. */
export async function killChildMigrators(): Promise<void> {
  const exits = [...running]
    .filter((child) => child.exitCode === null && child.signalCode === null)
    .map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    );
  await Promise.all(exits);
}
