import { type KV, Kvm } from '@nats-io/kv';
import { BUCKETS, type RunControlState, RunControlStateSchema } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from '../bus.js';
import { decodeJson, encodeJson } from '../codec.js';

function openBucket(bus: Bus, replicas = 1): Promise<KV> {
  return new Kvm(bus.nc).create(BUCKETS.runControl, { history: 1, replicas });
}

function parse(value: Uint8Array): RunControlState | undefined {
  try {
    const parsed = RunControlStateSchema.safeParse(decodeJson(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Writes run control states; written by the reporter, read by executors through {@link watchRunControl}. */
export interface RunControlStore {
  /**
   * Stores the state unless the bucket already holds one folded from a later (or the same) event
   * (`seq`), so replicas that write the same run never move it backwards. True when written.
   */
  save(state: RunControlState): Promise<boolean>;
  get(runId: string): Promise<RunControlState | undefined>;
}

export async function openRunControlStore(bus: Bus, options: { replicas?: number } = {}): Promise<RunControlStore> {
  const kv = await openBucket(bus, options.replicas);
  const read = async (runId: string) => {
    const entry = await kv.get(runId);
    return entry && entry.operation === 'PUT' ? { entry, state: parse(entry.value) } : undefined;
  };
  return {
    async get(runId) {
      return (await read(runId))?.state;
    },
    async save(state) {
      const data = encodeJson(state);
      // Compare-and-set: a concurrent writer makes us read again and decide again.
      for (let attempt = 1; ; attempt++) {
        const current = await read(state.runId);
        if (current?.state && current.state.seq >= state.seq) return false;
        try {
          if (current) await kv.update(state.runId, data, current.entry.revision);
          else await kv.create(state.runId, data);
          return true;
        } catch (error) {
          if (attempt >= 5) throw error;
        }
      }
    },
  };
}

/** A live, local copy of every run's control state. */
export interface RunControlView {
  get(runId: string): RunControlState | undefined;
  readonly size: number;
  stop(): Promise<void>;
}

/**
 * Watches the control bucket and keeps every run's state in memory, so checking a task costs a map
 * lookup. Resolves once the states stored at start are loaded.
 */
export async function watchRunControl(
  bus: Bus,
  options: { replicas?: number; logger: Logger; onChange?: (state: RunControlState) => void },
): Promise<RunControlView> {
  const kv = await openBucket(bus, options.replicas);
  const states = new Map<string, RunControlState>();
  const empty = (await kv.status()).values === 0;
  const watch = await kv.watch();
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  if (empty) markReady();
  const done = (async () => {
    for await (const entry of watch) {
      if (entry.operation === 'PUT') {
        const state = parse(entry.value);
        if (state) {
          states.set(entry.key, state);
          options.onChange?.(state);
        } else {
          options.logger.warn({ key: entry.key }, 'ignoring a malformed run control state');
        }
      } else {
        states.delete(entry.key);
      }
      if (entry.isUpdate || entry.delta === 0) markReady();
    }
  })();
  await ready;
  return {
    get: (runId) => states.get(runId),
    get size() {
      return states.size;
    },
    async stop() {
      watch.stop();
      await done;
    },
  };
}
