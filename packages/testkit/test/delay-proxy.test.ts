import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';

import { type DelayProxyHandle, startDelayProxy } from '../src/delay-proxy.js';

/** The fastest of several `SELECT 1` round trips: the least disturbed by a busy machine. */
async function fastestQueryMs(port: number, rounds = 20): Promise<number> {
  const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
  await client.connect();
  const times: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await client.query('SELECT 1');
      times.push(performance.now() - t0);
    }
  } finally {
    await client.end();
  }
  return Math.min(...times);
}

describe('delay proxy', () => {
  let proxy: DelayProxyHandle | undefined;
  afterAll(() => proxy?.close());

  it('holds every chunk the server sends for the delay, counted from its own arrival, and never releases one early', async () => {
    const direct = await fastestQueryMs(5432);
    proxy = await startDelayProxy({ port: 5432 }, 10);
    const delayed = await fastestQueryMs(proxy.port);
    // Each exchange gains at least the delay (timers never fire early).
    expect(delayed - direct).toBeGreaterThanOrEqual(9.5);
    // What the proxy did, chunk by chunk: due exactly the delay after it arrived (holds do not add
    // up behind each other), released at or after that. How late a timer fires on a busy machine
    // is the machine's, not the proxy's, so it is not bounded here.
    expect(proxy.held.length).toBeGreaterThanOrEqual(20);
    for (const h of proxy.held) {
      expect(h.due - h.arrivedAt).toBeCloseTo(10, 6);
      expect(h.releasedAt).toBeGreaterThanOrEqual(h.due);
    }

    // At 0 ms nothing is held: chunks go straight through.
    proxy.setDelay(0);
    const before = proxy.held.length;
    await fastestQueryMs(proxy.port);
    expect(proxy.held.length).toBe(before);
  });

  it('keeps a connection whole: many results arrive complete and in order', async () => {
    proxy ??= await startDelayProxy({ port: 5432 }, 2);
    proxy.setDelay(2);
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/postgres` });
    await client.connect();
    const result = await client.query<{ n: number }>('SELECT n FROM generate_series(1, 20000) AS n');
    expect(result.rows.length).toBe(20_000);
    expect(result.rows.at(-1)!.n).toBe(20_000);
    const seen: number[] = [];
    for (const n of [1, 2, 3]) seen.push((await client.query<{ n: number }>('SELECT $1::int AS n', [n])).rows[0]!.n);
    expect(seen).toEqual([1, 2, 3]);
    await client.end();
  });
});
