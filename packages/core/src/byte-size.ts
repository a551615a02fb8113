const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$/i;

/**
 * Parses `512MiB`, `20GB`, `1.5GiB`, `4096B` into bytes; `unlimited` is -1 (JetStream's "no
 * limit"). A unit is required, as for durations: `20` could be bytes or gigabytes to whoever
 * wrote it. Returns undefined for anything else, so the caller can name the bad setting.
 */
export function parseByteSize(text: string): number | undefined {
  if (/^\s*unlimited\s*$/i.test(text)) return -1;
  const match = SIZE.exec(text);
  if (!match) return undefined;
  const unit = UNITS[match[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.round(Number(match[1]) * unit);
}

/** `1.5 GiB`, `512 MiB`, `-1` as `unlimited`: sizes in messages and reports. */
export function formatByteSize(bytes: number): string {
  if (bytes < 0) return 'unlimited';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[i]}`;
}
