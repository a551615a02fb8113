import { setTimeout as sleep } from 'node:timers/promises';

import { afterEach, describe, expect, it } from 'vitest';

import { ExecutorLoadMonitor } from '../src/executor-load.js';

/** Keeps the loop busy with short callbacks (~0.2 ms each) until `ms` have passed: no idle time, little delay. */
async function spinShortCallbacks(ms: number): Promise<void> {
  const until = performance.now() + ms;
  await new Promise<void>((resolve) => {
    const step = () => {
      const stop = performance.now() + 0.2;
      while (performance.now() < stop) {
        /* work */
      }
      if (performance.now() < until) setImmediate(step);
      else resolve();
    };
    setImmediate(step);
  });
}

describe('ExecutorLoadMonitor', () => {
  let monitor: ExecutorLoadMonitor | undefined;
  afterEach(() => monitor?.stop());

  it('reports a loop saturated by short callbacks as busy, and an idle one as not', async () => {
    monitor = new ExecutorLoadMonitor(100, 10);
    expect(monitor.current()).toEqual({ executorCpu: 0, loopDelayMs: 0, loopBusy: 0 });
    // Three windows of spinning: the last full one lies inside it.
    await spinShortCallbacks(350);
    const busy = monitor.current();
    expect(busy.loopBusy).toBeGreaterThan(0.9);
    expect(busy.executorCpu).toBeGreaterThan(0);

    await sleep(350);
    expect(monitor.current().loopBusy).toBeLessThan(0.5);
  });
});
