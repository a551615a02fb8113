import { type Logger, type LoggerOptions,pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerConfig {
  /** `service` field on every line. */
  service: string;
  /** pino level (`LOG_LEVEL`), default `info`. */
  level?: string;
  /** Optional destination (tests capture lines); default stdout. */
  destination?: NodeJS.WritableStream;
}

/**
 * Paths whose values are secrets wherever they appear in a log object. Database URLs are
 * sanitised before they are logged; this is the second line of defence.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  'pass',
  '*.pass',
  'token',
  '*.token',
  'PGPASSWORD',
  '*.PGPASSWORD',
  'authorization',
  '*.authorization',
  'nkey',
  '*.nkey',
  'creds',
  '*.creds',
];

/** JSON logs with the service name, ISO times and redacted secrets. */
export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    level: config.level ?? 'info',
    base: { service: config.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    formatters: { level: (label) => ({ level: label }) },
  };
  return config.destination ? pino(options, config.destination) : pino(options);
}
