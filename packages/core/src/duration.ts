const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 };

const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)\s*$/;
const BARE_NUMBER = /^\s*(\d+(?:\.\d+)?)\s*$/;

/**
 * Parses `500ms`, `5s`, `2m`/`2min`, `1h`, `7d` into milliseconds. A unit is required: a bare number
 * (`30`) is refused, because `SLUICE_SHUTDOWN_GRACE=30` meant 30 ms to the code and 30 seconds to
 * whoever wrote it. Returns undefined for anything else, so callers can name the bad setting
 * (and say why with {@link durationProblem}).
 */
export function parseDuration(text: string): number | undefined {
  const match = DURATION.exec(text);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (UNITS[match[2]!] ?? 1));
}

/**
 * Why `text` is not a duration, with the fix: for a bare number, the same number with each unit
 * that makes sense (`"30" has no unit: write 30s for seconds or 30ms for milliseconds`).
 */
export function durationProblem(text: string): string {
  const bare = BARE_NUMBER.exec(text);
  if (bare)
    return `"${text.trim()}" has no unit: write ${bare[1]}s for seconds or ${bare[1]}ms for milliseconds (units: ms, s, m or min, h, d)`;
  return `"${text}" is not a duration: write a number and a unit, such as 500ms, 30s, 2m or 1h`;
}
