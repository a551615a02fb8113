/**
 * The fault schedule of a chaos run: a pure function of its seed, so any run can be replayed with
 * `npm run chaos -- --seed S --runs 1`.
 */

import { seededRandom } from '../bad-input-cases.js';

export const FAULT_KINDS = [
  'kill',
  'freeze',
  'nats-kill',
  'pg-stop',
  'host-cut',
  'duplicate-request',
  'pause-resume',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const SERVICE_TARGETS = [
  'planner-1',
  'planner-2',
  'executor-1',
  'executor-2',
  'executor-3',
  'reporter-1',
  'reporter-2',
] as const;
export type ServiceTarget = (typeof SERVICE_TARGETS)[number];

export interface PlannedFault {
  kind: FaultKind;
  /** When it starts, in ms after the request is published. */
  atMs: number;
  /** How long it lasts (freeze, outage, pause; for a kill: the time until the restart). */
  durationMs: number;
  /** What it hits: a service, a NATS node (`n1`…`n3`) or a database host (`a`, `b`); none for request faults. */
  target?: string;
}

const between = (rand: () => number, lo: number, hi: number): number => Math.round(lo + rand() * (hi - lo));
const pick = <T>(rand: () => number, items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

/**
 * 1–4 faults at random moments of the first `windowMs` of a run. The first fault's kind rotates
 * with the seed, so consecutive seeds cover every kind; the others are drawn at random.
 */
export function planFaults(seed: number, windowMs: number): PlannedFault[] {
  const rand = seededRandom(seed);
  const count = between(rand, 1, 4);
  const faults: PlannedFault[] = [];
  for (let i = 0; i < count; i++) {
    const kind = i === 0 ? FAULT_KINDS[seed % FAULT_KINDS.length]! : pick(rand, FAULT_KINDS);
    const atMs = between(rand, 300, windowMs);
    switch (kind) {
      case 'kill':
        faults.push({ kind, atMs, durationMs: between(rand, 200, 2_000), target: pick(rand, SERVICE_TARGETS) });
        break;
      case 'freeze':
        faults.push({ kind, atMs, durationMs: between(rand, 5_000, 15_000), target: pick(rand, SERVICE_TARGETS) });
        break;
      case 'nats-kill':
        faults.push({ kind, atMs, durationMs: between(rand, 1_000, 6_000), target: pick(rand, ['n1', 'n2', 'n3']) });
        break;
      case 'pg-stop':
        faults.push({ kind, atMs, durationMs: between(rand, 1_000, 6_000), target: pick(rand, ['a', 'b']) });
        break;
      case 'host-cut':
        faults.push({ kind, atMs, durationMs: between(rand, 2_000, 8_000), target: 'b' });
        break;
      case 'duplicate-request':
        faults.push({ kind, atMs, durationMs: 0 });
        break;
      case 'pause-resume':
        faults.push({ kind, atMs, durationMs: between(rand, 1_000, 5_000) });
        break;
    }
  }
  return faults.sort((x, y) => x.atMs - y.atMs);
}

/** `freeze executor-2 @3.1s for 7.2s` */
export function describeFault(f: PlannedFault): string {
  const target = f.target ? ` ${f.target}` : '';
  const lasting = f.durationMs > 0 ? ` ${(f.durationMs / 1000).toFixed(1)}s` : '';
  return `${f.kind}${target}@${(f.atMs / 1000).toFixed(1)}s${lasting}`;
}
