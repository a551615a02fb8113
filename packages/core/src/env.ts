import { parseByteSize } from './byte-size.js';
import { durationProblem, parseDuration } from './duration.js';

/** A setting that is missing or malformed; the message names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Typed reads of environment variables, each failing with a message that names the variable.
 * Services call it once, in `loadConfig(env)`; nothing else reads `process.env`.
 */
export function envReader(env: Env) {
  const raw = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  return {
    string(name: string, fallback?: string): string {
      const value = raw(name) ?? fallback;
      if (value === undefined) throw new ConfigError(`${name} is required`);
      return value;
    },
    optional(name: string): string | undefined {
      return raw(name);
    },
    int(name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const n = Number(value);
      if (!Number.isInteger(n)) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
      if (range.min !== undefined && n < range.min)
        throw new ConfigError(`${name} must be at least ${range.min}, got ${n}`);
      if (range.max !== undefined && n > range.max)
        throw new ConfigError(`${name} must be at most ${range.max}, got ${n}`);
      return n;
    },
    /** Durations like `5s`, `500ms`, `2min` (a unit is required); returns milliseconds. */
    duration(name: string, fallbackMs: number): number {
      const value = raw(name);
      if (value === undefined) return fallbackMs;
      const ms = parseDuration(value);
      if (ms === undefined) throw new ConfigError(`${name} must be a duration with a unit: ${durationProblem(value)}`);
      return ms;
    },
    /** Sizes like `512MiB`, `20GB` (a unit is required), or `unlimited` (-1); returns bytes. */
    bytes(name: string, fallback: number): number {
      const value = raw(name);
      if (value === undefined) return fallback;
      const bytes = parseByteSize(value);
      if (bytes === undefined)
        throw new ConfigError(
          `${name} must be a size with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or "unlimited", got "${value}"`,
        );
      return bytes;
    },
    oneOf<T extends string>(name: string, values: readonly T[], fallback?: T): T {
      const value = raw(name) ?? fallback;
      if (value === undefined) throw new ConfigError(`${name} is required (one of: ${values.join(', ')})`);
      if (!(values as readonly string[]).includes(value)) {
        throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${value}"`);
      }
      return value as T;
    },
  };
}
