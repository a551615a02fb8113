import { rm } from 'node:fs/promises';

import { type Bus, connectBus, ensureTopology } from '@sluice/bus';
import { runEventSubject, type RunLostEvent } from '@sluice/contracts';
import { type NatsServerHandle, startNatsServer } from '@sluice/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { EXIT } from '../src/cli-error.js';
import { silentLogger } from '../src/commands/migrate.js';
import { watchRun } from '../src/run-watcher.js';

const lostEvent = (runId: string): RunLostEvent => ({
  runId,
  reason: 'store_lost',
  lastKnown: { status: 'running', total: 40, settled: 8, targetVersion: 3, acceptedAt: new Date().toISOString() },
  recover: `sluice runs recover ${runId}`,
  detectedAt: new Date().toISOString(),
  by: 'test',
});

/** `migrate --wait`'s watcher when the JetStream store is lost under it: the server killed, its store deleted, started empty. */
describe('watchRun and a lost JetStream store', { timeout: 20_000 }, () => {
  let nats: NatsServerHandle;
  let bus: Bus;
  const lines: string[] = [];
  const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l), isTTY: false };

  beforeEach(async () => {
    lines.length = 0;
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'watch-test' }, silentLogger);
    await ensureTopology(bus.jsm);
  });
  afterEach(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  /** What the services do after the loss: the topology re-created empty. */
  async function loseStore(): Promise<void> {
    const reconnected = (async () => {
      for await (const s of bus.nc.status()) if (s.type === 'reconnect') return;
    })();
    await nats.kill();
    await rm(nats.storeDir, { recursive: true, force: true });
    await nats.restart();
    await reconnected;
    await ensureTopology(bus.jsm);
  }

  it("exits with EXIT.lost and the recover command once the reporter's lost event is in the new store", async () => {
    const { result } = await watchRun(bus, 'w-lost', { output, json: false, storeCheckMs: 100, lostGraceMs: 60_000 });
    await bus.publish(runEventSubject('w-lost', 'progress'), { runId: 'w-lost' });
    await loseStore();
    await bus.publish(runEventSubject('w-lost', 'lost'), lostEvent('w-lost'));
    const published = Date.now();
    expect(await result).toBe(EXIT.lost);
    expect(Date.now() - published).toBeLessThan(5_000);
    expect(lines.join('\n')).toMatch(/run w-lost: LOST[\s\S]*recover {3}sluice runs recover w-lost/);
  });

  it('says the run was lost when no lost event comes within the grace', async () => {
    const { result } = await watchRun(bus, 'w-gone', { output, json: true, storeCheckMs: 100, lostGraceMs: 500 });
    await loseStore();
    expect(await result).toBe(EXIT.lost);
    expect(JSON.parse(lines.at(-1)!)).toEqual({
      event: 'lost',
      runId: 'w-gone',
      reason: 'store_lost',
      recover: 'sluice runs recover w-gone',
    });
  });

  it('follows the run on when its runId was requested again in the new store', async () => {
    const { result } = await watchRun(bus, 'w-new', {
      output,
      json: false,
      storeCheckMs: 100,
      lostGraceMs: 500,
      timeoutMs: 4_000,
    });
    await loseStore();
    await bus.publish(runEventSubject('w-new', 'accepted'), {
      runId: 'w-new',
      target: 'latest',
      targetVersion: 3,
      digest: 'a'.repeat(64),
      dryRun: false,
      acceptedAt: new Date().toISOString(),
    });
    expect(await result).toBe(EXIT.timeout);
  });

  it('takes a lost event from before the watch as history: a lost runId may be requested again', async () => {
    await bus.publish(runEventSubject('w-again', 'lost'), lostEvent('w-again'));
    const { result } = await watchRun(bus, 'w-again', { output, json: false, timeoutMs: 1_500 });
    expect(await result).toBe(EXIT.timeout);
  });
});
