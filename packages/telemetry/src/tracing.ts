import { createRequire } from 'node:module';

import { type Span } from '@opentelemetry/api';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { NodeSDK } from '@opentelemetry/sdk-node';

export interface TracingOptions {
  /** Short service name (`planner`); the trace's `service.name` is `sluice-<service>` unless `OTEL_SERVICE_NAME` is set. */
  service: string;
}

export interface Tracing {
  /** Whether the SDK was started; when false the API's no-op tracer is in place and spans cost nothing. */
  readonly enabled: boolean;
  /** Why tracing is off, or where it exports (for the start-up log line). */
  readonly describe: string;
  /** Flushes the spans still queued and stops the SDK (idempotent). */
  shutdown(): Promise<void>;
}

/** Longest span attribute value unless `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` says otherwise: a migration file's SQL is `db.query.text`. */
const DEFAULT_ATTRIBUTE_LENGTH = 4_096;

/** A password literal in SQL (`CREATE ROLE x PASSWORD '...'`), kept out of `db.statement`. */
const SQL_PASSWORD = /(\bpassword\s+)(?:'(?:[^']|'')*'|\$(\w*)\$[\s\S]*?\$\2\$)/gi;

/**
 * Whether the environment asks for traces: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an explicit `OTEL_TRACES_EXPORTER` other than `none`,
 * and not `OTEL_SDK_DISABLED=true`. Without either, the SDK is never loaded: no exporter retrying
 * a collector that is not there, and no per-span work.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): { on: boolean; why: string } {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true')
    return { on: false, why: 'OTEL_SDK_DISABLED=true' };
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (exporters[0] === 'none') return { on: false, why: 'OTEL_TRACES_EXPORTER=none' };
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  if (endpoint) return { on: true, why: `OTLP to ${safeEndpoint(endpoint)}` };
  if (exporters.length > 0) return { on: true, why: `OTEL_TRACES_EXPORTER=${exporters.join(',')}` };
  return { on: false, why: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_EXPORTER' };
}

/**
 * Starts the OpenTelemetry SDK for a service when the environment asks for it (see
 * {@link tracingRequested}) in `process.env`: traces only (the services' metrics are Prometheus, their logs pino),
 * W3C trace context, and the `pg` instrumentation (`pg.connect` and `pg.query:*` spans under our
 * own spans only; no query parameters; password literals masked).
 *
 * Call it before the service loads: the `pg` instrumentation is hooked in here. The services are
 * ES modules that import `pg` (CommonJS) before this runs, which the require hook never sees, so
 * `pg` is required here once more: the hook then patches `Client.prototype`, which the ESM import
 * shares.
 */
export function startTracing(options: TracingOptions): Tracing {
  // The SDK reads the exporter's settings (endpoint, protocol, headers, batching) from
  // process.env itself; the decision to start it is ours.
  const env = process.env;
  const requested = tracingRequested(env);
  if (!requested.on) return { enabled: false, describe: requested.why, shutdown: () => Promise.resolve() };
  const lengthSet =
    env.OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT !== undefined || env.OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT !== undefined;
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: `sluice-${options.service}` }),
    ...(lengthSet ? {} : { spanLimits: { attributeValueLengthLimit: DEFAULT_ATTRIBUTE_LENGTH } }),
    // Traces only: without these the SDK would also start OTLP metric and log exporters.
    metricReaders: [],
    logRecordProcessors: [],
    // OTEL_NODE_DISABLED_INSTRUMENTATIONS=pg (as in auto-instrumentations-node): no SQL spans,
    // for fleets where their cost is not worth it (see docs/observability.md, Overhead).
    instrumentations: disabledInstrumentations(env).has('pg')
      ? []
      : [
          new PgInstrumentation({
            enhancedDatabaseReporting: false,
            requireParentSpan: true,
            requestHook: (span, info) => maskSqlPasswords(span, info.query.text),
          }),
        ],
  });
  sdk.start();
  hookPg();
  let stopped: Promise<void> | undefined;
  return {
    enabled: true,
    describe: requested.why,
    shutdown: () => (stopped ??= sdk.shutdown().catch(() => undefined)),
  };
}

function disabledInstrumentations(env: NodeJS.ProcessEnv): Set<string> {
  return new Set(
    (env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

function hookPg(): void {
  try {
    createRequire(import.meta.url)('pg');
  } catch {
    // This service does not use pg.
  }
}

function maskSqlPasswords(span: Span, text: string): void {
  SQL_PASSWORD.lastIndex = 0;
  if (!SQL_PASSWORD.test(text)) return;
  const masked = text.replace(SQL_PASSWORD, "$1'[redacted]'");
  // The hook runs after the instrumentation set the attribute (stable semantic conventions).
  span.setAttribute('db.query.text', masked);
}

/** An endpoint URL without user info (a collector URL may carry a token). */
function safeEndpoint(endpoint: string): string {
  try {
    const url = new URL(endpoint);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(unparsable endpoint)';
  }
}
