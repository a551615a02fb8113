/**
 * Exponential backoff with full jitter (AWS architecture blog): spreads retries of many tenants
 * on one struggling host instead of sending them back in lockstep.
 */
export function retryDelayMs(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
