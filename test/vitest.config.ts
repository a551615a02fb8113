import { defineConfig } from 'vitest/config';

// End-to-end tests start real processes and databases: a file runs alone in its lane, with
// generous timeouts. `run-lanes.ts` (the package's `test` script) runs the `faults` and `services`
// lanes side by side — most of an end-to-end test's time is spent waiting for events (ack waits,
// elections, backoffs), and every file isolates what it creates (its own nats-server, randomly
// named databases, sessions counted in its own databases only) — then the `alone` lane, whose
// verdicts read timings, with nothing beside it. `npx vitest run FILE` still runs any one file.
export const LANES = {
  // The two side-by-side lanes should take about as long as each other: the longer one sets CI's
  // time. Measured on a quiet machine at f233d5d (`.ci/run`, 15.3 min in all): faults 259 s,
  // services 440 s; the executor's flow-control file (83 s, waits on ack waits and limits, no
  // fault of its own) now runs beside the faults.
  faults: ['faults-*.test.ts', 'executor-flow-control.test.ts'],
  alone: ['bottleneck.test.ts'],
};

const lane = (name: string, include: string[], exclude: string[] = []) => ({
  extends: true as const,
  test: { name, include, exclude: ['node_modules/**', ...exclude], fileParallelism: false },
});

export default defineConfig({
  test: {
    testTimeout: 180_000,
    hookTimeout: 240_000,
    projects: [
      lane('faults', LANES.faults),
      lane('services', ['**/*.test.ts'], [...LANES.faults, ...LANES.alone]),
      lane('alone', LANES.alone),
    ],
  },
});
