import { DiscardPolicy, type JetStreamManager, RetentionPolicy, type StreamConfig } from '@nats-io/jetstream';
import { ADVISORY_STREAM, LEDGER_STREAM, STREAMS } from '@sluice/contracts';

import { ensureBundleBucket } from './bundle-store.js';
import type { Bus } from './bus.js';
import { ledgerStreamConfig } from './lifecycle/task-ledger.js';
import { ensureStream, statesLimits, streamCommon, type TopologyOptions } from './stream-settings.js';

const MINUTE_NS = 60 * 1e9;
/** The streams Sluice needs, with their settings. */
export function streamConfigs(options: TopologyOptions = {}): Array<Partial<StreamConfig> & { name: string }> {
  const common = streamCommon(options);
  return [
    ledgerStreamConfig(options),
    {
      ...common,
      ...STREAMS.requests,
      subjects: [...STREAMS.requests.subjects],
      retention: RetentionPolicy.Limits,
      duplicate_window: 2 * MINUTE_NS,
    },
    {
      ...common,
      ...STREAMS.runs,
      subjects: [...STREAMS.runs.subjects],
      retention: RetentionPolicy.Limits,
      duplicate_window: 10 * MINUTE_NS,
    },
    // Work queue: a task is removed once acked. A long duplicate window absorbs a planner that replans after a crash.
    {
      ...common,
      ...STREAMS.tasks,
      subjects: [...STREAMS.tasks.subjects],
      retention: RetentionPolicy.Workqueue,
      duplicate_window: 10 * MINUTE_NS,
    },
    {
      ...common,
      ...STREAMS.outcomes,
      subjects: [...STREAMS.outcomes.subjects],
      retention: RetentionPolicy.Limits,
      duplicate_window: 10 * MINUTE_NS,
    },
    // The server's advisories are not stored anywhere else: kept here so a reporter that was down
    // when a task ran out of deliveries still learns of it.
    {
      ...common,
      ...ADVISORY_STREAM,
      subjects: [...ADVISORY_STREAM.subjects],
      retention: RetentionPolicy.Limits,
      // The server publishes these itself and cannot be refused: a full stream drops the oldest.
      discard: DiscardPolicy.Old,
    },
  ];
}

/**
 * Creates the streams that do not exist yet (the five above, the task ledger among them) and the
 * bundle bucket. With limits in `options`, an existing stream keeps its other settings but takes
 * those limits (retention, max bytes, discard) when they differ, so raising `SLUICE_STREAM_MAX_BYTES` and
 * restarting a planner or reporter is how an operator frees a full stream. Idempotent, safe to race.
 */
export async function ensureTopology(jsm: JetStreamManager, options: TopologyOptions = {}): Promise<void> {
  await ensureBundleBucket(jsm.jetstream(), options);
  for (const config of streamConfigs(options)) await ensureStream(jsm, config, statesLimits(options));
}

/** What `/readyz` reports about the bus: each check and whether it passed. */
export interface BusReadiness {
  /** The connection is open (a closed one never comes back). */
  connected: boolean;
  /**
   * Every Sluice stream answered `STREAM.INFO` in time: the server is reachable now (while the
   * client reconnects the requests fail) and nobody deleted a stream.
   */
  topology: boolean;
}

/**
 * Checks the connection and the streams, for readiness probes: one `STREAM.INFO` per stream,
 * bounded by `timeoutMs` so a probe never hangs on a server that stopped answering.
 */
export async function busReadiness(bus: Bus, timeoutMs = 2_000): Promise<BusReadiness> {
  const connected = !bus.nc.isClosed();
  if (!connected) return { connected, topology: false };
  const names = [...Object.values(STREAMS).map((s) => s.name), LEDGER_STREAM.name];
  const checks = Promise.all(names.map((name) => bus.jsm.streams.info(name))).then(
    () => true,
    () => false,
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const topology = await Promise.race([checks, timeout]);
  clearTimeout(timer);
  return { connected, topology };
}
