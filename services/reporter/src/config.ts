import { readFileSync } from 'node:fs';

import { type BusConfig, loadBusConfig, loadStreamLimits, type StreamLimits } from '@sluice/bus';
import { ConfigError, type Env, envReader } from '@sluice/core';

import { type ApiAuth, parseApiTokens } from './api-auth.js';

export interface ReporterConfig {
  bus: BusConfig;
  logLevel: string;
  /** HTTP port for status and health (`SLUICE_REPORTER_PORT`; 0 picks a free one). */
  httpPort: number;
  /** Interface the HTTP server binds to (`SLUICE_REPORTER_HOST`). */
  httpHost: string;
  /** Least time between two progress events of a run (`SLUICE_PROGRESS_INTERVAL`). */
  progressIntervalMs: number;
  /** JetStream stream replicas (`SLUICE_STREAM_REPLICAS`). */
  streamReplicas: number;
  /** Retention and bytes per stream (`SLUICE_RETENTION`, `SLUICE_STREAM_MAX_BYTES`), applied to the streams at start. */
  streamLimits: Required<StreamLimits>;
  /**
   * A tenant whose task shows no outcome for this long is looked up in the work queue and, when
   * it is gone, published again (`SLUICE_RECONCILE_AFTER`).
   */
  reconcileAfterMs: number;
  /** How often unfinished runs are swept for lost tasks (`SLUICE_RECONCILE_INTERVAL`). */
  reconcileIntervalMs: number;
  /**
   * Who may call the HTTP API: named bearer tokens with a role (`SLUICE_API_TOKENS` or
   * `SLUICE_API_TOKENS_FILE`), or nobody checked at all when `SLUICE_API_AUTH=off`.
   */
  apiAuth: ApiAuth;
  /** How often every host's queue is sampled from its consumer while runs are active (`SLUICE_QUEUE_SAMPLE_INTERVAL`). */
  queueSampleIntervalMs: number;
  /**
   * How long an outcome waits for others before the fleet records are written together
   * (`SLUICE_FLEET_LINGER`; 0: each at once). See `FleetWriterOptions.lingerMs`.
   */
  fleetLingerMs: number;
}

export function loadReporterConfig(env: Env): ReporterConfig {
  const e = envReader(env);
  return Object.freeze({
    bus: loadBusConfig(env, 'sluice-reporter'),
    logLevel: e.string('LOG_LEVEL', 'info'),
    httpPort: e.int('SLUICE_REPORTER_PORT', 8080, { min: 0, max: 65_535 }),
    httpHost: e.string('SLUICE_REPORTER_HOST', '127.0.0.1'),
    progressIntervalMs: e.duration('SLUICE_PROGRESS_INTERVAL', 1_000),
    streamReplicas: e.int('SLUICE_STREAM_REPLICAS', 1, { min: 1, max: 5 }),
    streamLimits: loadStreamLimits(env),
    reconcileAfterMs: e.duration('SLUICE_RECONCILE_AFTER', 120_000),
    reconcileIntervalMs: e.duration('SLUICE_RECONCILE_INTERVAL', 10_000),
    queueSampleIntervalMs: e.duration('SLUICE_QUEUE_SAMPLE_INTERVAL', 1_000),
    fleetLingerMs: e.duration('SLUICE_FLEET_LINGER', 20),
    apiAuth: loadApiAuth(env),
  });
}

/**
 * `SLUICE_API_AUTH` (`on` unless set to `off`) with the tokens of `SLUICE_API_TOKENS` or the file
 * named by `SLUICE_API_TOKENS_FILE` (one of the two). Auth on without tokens stops the reporter:
 * an API that can migrate every database is never open by accident.
 */
export function loadApiAuth(env: Env): ApiAuth {
  const e = envReader(env);
  const mode = e.oneOf('SLUICE_API_AUTH', ['on', 'off'], 'on');
  const inline = e.optional('SLUICE_API_TOKENS');
  const file = e.optional('SLUICE_API_TOKENS_FILE');
  if (mode === 'off') {
    if (inline !== undefined || file !== undefined)
      throw new ConfigError('SLUICE_API_AUTH=off and API tokens are both set: remove one');
    return Object.freeze({ mode: 'off' });
  }
  if (inline !== undefined && file !== undefined)
    throw new ConfigError('set SLUICE_API_TOKENS or SLUICE_API_TOKENS_FILE, not both');
  if (inline !== undefined)
    return Object.freeze({ mode: 'tokens', tokens: parseApiTokens(inline, 'SLUICE_API_TOKENS') });
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      throw new ConfigError(
        `SLUICE_API_TOKENS_FILE: cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    return Object.freeze({ mode: 'tokens', tokens: parseApiTokens(text, 'SLUICE_API_TOKENS_FILE') });
  }
  throw new ConfigError(
    'the HTTP API needs tokens: set SLUICE_API_TOKENS=name:operate|read:TOKEN,... (or SLUICE_API_TOKENS_FILE), or SLUICE_API_AUTH=off for a local demo',
  );
}
