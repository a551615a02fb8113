import { isSpanContextValid, trace } from '@opentelemetry/api';
import { type Logger, type LoggerOptions, pino } from 'pino';
import pinoPretty from 'pino-pretty';

export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

export interface LoggerConfig {
  /** `service` field on every line. */
  service: string;
  /** pino level (`LOG_LEVEL`), default `info`. */
  level?: string;
  /** `json` (default) or `pretty` (human-readable, for a terminal); see {@link resolveLogFormat}. */
  format?: LogFormat;
  /** Optional destination (tests capture lines); default stdout. */
  destination?: NodeJS.WritableStream;
}

/**
 * Paths whose values are secrets wherever they appear in a log object. Database URLs are
 * sanitised before they are logged; this is the second line of defence. Two levels deep, so a
 * logged config (`{ bus: { pass } }`) is covered too.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'pass',
  '*.pass',
  '*.*.pass',
  'token',
  '*.token',
  '*.*.token',
  'PGPASSWORD',
  '*.PGPASSWORD',
  'NATS_PASS',
  '*.NATS_PASS',
  'NATS_PASSWORD',
  '*.NATS_PASSWORD',
  'NATS_TOKEN',
  '*.NATS_TOKEN',
  'authorization',
  '*.authorization',
  '*.*.authorization',
  'SLUICE_API_TOKENS',
  '*.SLUICE_API_TOKENS',
  'tokens',
  '*.tokens',
  'nkey',
  '*.nkey',
  'seed',
  '*.seed',
  'jwt',
  '*.jwt',
  'creds',
  '*.creds',
  '*.*.creds',
];

/**
 * `LOG_FORMAT` if set (`json` | `pretty`), else pretty on a terminal outside production
 * (`NODE_ENV` != `production`), else JSON. Throws naming the variable on anything else.
 */
export function resolveLogFormat(
  env: { LOG_FORMAT?: string | undefined; NODE_ENV?: string | undefined },
  isTTY: boolean,
): LogFormat {
  const asked = env.LOG_FORMAT?.trim().toLowerCase();
  if (asked === 'json' || asked === 'pretty') return asked;
  if (asked) throw new Error(`LOG_FORMAT must be json or pretty, got "${env.LOG_FORMAT}"`);
  return isTTY && env.NODE_ENV !== 'production' ? 'pretty' : 'json';
}

/**
 * The active span's ids on every line written inside it, so a log line leads to its trace and a
 * trace to its lines. Nothing is added outside a span, or when tracing is off (no span is active
 * then: no context manager is registered).
 */
function traceFields(): Record<string, string> {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && isSpanContextValid(ctx) ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
}

/** JSON logs with the service name, ISO times, trace ids and redacted secrets (or the same, pretty). */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: { service: config.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
    mixin: traceFields,
  };
  if (config.format === 'pretty') {
    // In-process (no worker thread): for a person at a terminal, where throughput is not the point.
    const pretty = pinoPretty({
      destination: config.destination ?? 1,
      ignore: 'pid,hostname',
      translateTime: 'SYS:HH:MM:ss.l',
      sync: true,
    });
    return pino(options, pretty);
  }
  return config.destination ? pino(options, config.destination) : pino(options);
}
