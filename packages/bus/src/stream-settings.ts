import {
  DiscardPolicy,
  type JetStreamManager,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { type Env, envReader, formatByteSize } from '@sluice/core';

const MS_NS = 1e6;

/** A configured stream limit that cannot be applied without losing stored messages. */
export class StreamLimitError extends Error {
  override readonly name = 'StreamLimitError';
  readonly transient = false;
}

/** The limits of every Sluice stream (`SLUICE_RETENTION`, `SLUICE_STREAM_MAX_BYTES`; see loadStreamLimits). */
export interface StreamLimits {
  /** How long requests, run events, outcomes, ledger entries and unacked tasks are kept (default 7 days). */
  retentionMs?: number;
  /**
   * Bytes each stream may hold, -1 for no limit (the default). A full stream refuses new messages
   * (`discard: new`) rather than dropping old ones: what was acknowledged is never lost, and a
   * publisher sees "maximum bytes exceeded" until the limit is raised or old runs age out.
   */
  maxBytes?: number;
}

export interface TopologyOptions extends StreamLimits {
  /** Stream replicas (3 on a NATS cluster). */
  replicas?: number;
}

export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Settings every stream shares: storage, replicas and the limits. */
export function streamCommon(options: TopologyOptions = {}) {
  const maxBytes = options.maxBytes ?? -1;
  return {
    storage: StorageType.File,
    num_replicas: options.replicas ?? 1,
    max_age: (options.retentionMs ?? DEFAULT_RETENTION_MS) * MS_NS,
    max_bytes: maxBytes,
    discard: maxBytes > 0 ? DiscardPolicy.New : DiscardPolicy.Old,
  };
}

/**
 * Reads `SLUICE_RETENTION` (a duration, default 7d) and `SLUICE_STREAM_MAX_BYTES` (a size per
 * stream, default unlimited). The planner and the reporter both apply them to the streams at
 * start: give both the same values, as with `SLUICE_STREAM_REPLICAS`.
 */
export function loadStreamLimits(env: Env): Required<StreamLimits> {
  const e = envReader(env);
  return Object.freeze({
    retentionMs: e.duration('SLUICE_RETENTION', DEFAULT_RETENTION_MS),
    maxBytes: e.bytes('SLUICE_STREAM_MAX_BYTES', -1),
  });
}

/** Whether the caller states limits (a planner or reporter with its config), or only needs the stream to exist. */
export function statesLimits(options: StreamLimits): boolean {
  return options.maxBytes !== undefined || options.retentionMs !== undefined;
}

/**
 * Creates one stream; with `applyLimits`, also brings an existing one's limits to `config`'s. A
 * caller that does not know the configured limits (an executor making sure a stream exists) must
 * not pass it, or it would undo the operator's settings.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  config: Partial<StreamConfig> & { name: string },
  applyLimits: boolean,
): Promise<void> {
  let existing: StreamInfo;
  try {
    existing = await jsm.streams.info(config.name);
  } catch {
    try {
      await jsm.streams.add(config);
      return;
    } catch (error) {
      // Another service may have created it in between.
      existing = await jsm.streams.info(config.name).catch(() => {
        throw error;
      });
    }
  }
  if (!applyLimits) return;
  const limits = { max_age: config.max_age, max_bytes: config.max_bytes, discard: config.discard };
  const now = existing.config;
  if (now.max_age === limits.max_age && now.max_bytes === limits.max_bytes && now.discard === limits.discard) return;
  // JetStream enforces a lowered max_bytes by deleting the oldest messages, whatever the discard
  // policy: outcomes and run events that were acknowledged would be gone. Refuse instead.
  const maxBytes = limits.max_bytes ?? -1;
  if (maxBytes > 0 && existing.state.bytes > maxBytes) {
    throw new StreamLimitError(
      `SLUICE_STREAM_MAX_BYTES (${formatByteSize(maxBytes)}) is below what stream ${config.name} holds now (${formatByteSize(existing.state.bytes)}): lowering it would delete its oldest messages; set at least that much, or wait for SLUICE_RETENTION to age them out`,
    );
  }
  await jsm.streams.update(config.name, { ...now, ...limits });
}
