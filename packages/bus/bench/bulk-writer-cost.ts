// What writing a rebuilt index costs, by the way its keys are written (issue 18's recount): a
// private nats-server, N empty-valued keys into a KV bucket (history 1, as the fleet index), by
//   - KV put: nats.js `kv.put`, 2,048 in flight (what the recount did);
//   - bulk: `BulkWriter`, core publishes with an acknowledged one per 1,000.
// Alternated over rounds, each into a fresh bucket. Prints wall time, this process's CPU and the
// server's CPU (from /proc) per 1,000 keys, medians over the rounds.
//
//   npm run build && npx tsx packages/bus/bench/bulk-writer-cost.ts [keys=100000] [rounds=3]
import { Kvm } from '@nats-io/kv';
import { createLogger } from '@sluice/telemetry';
import { processTreeCpuMs, startNatsServer } from '@sluice/testkit';

import { BulkWriter } from '../src/bulk-writer.js';
import { connectBus } from '../src/bus.js';

const KEYS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const WINDOW = 2_048;
const EMPTY = new Uint8Array(0);

const nats = await startNatsServer();
const bus = await connectBus(
  { servers: nats.url, name: 'bulk-writer-bench' },
  createLogger({ service: 'bench', level: 'silent' }),
);
const kvm = new Kvm(bus.nc);

const serverCpuMs = (): number => processTreeCpuMs(nats.pid!);
const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const keyOf = (i: number) => `i.db${i % 8}.current.6.tenant-${i}`;

async function kvPut(bucket: string): Promise<void> {
  const kv = await kvm.create(bucket, { history: 1 });
  let inFlight = 0;
  let waiter: (() => void) | undefined;
  for (let i = 0; i < KEYS; i++) {
    inFlight += 1;
    void kv.put(keyOf(i), EMPTY).finally(() => {
      inFlight -= 1;
      if (waiter && inFlight <= WINDOW / 2) {
        const wake = waiter;
        waiter = undefined;
        wake();
      }
    });
    if (inFlight >= WINDOW) await new Promise<void>((resolve) => (waiter = resolve));
  }
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 5));
}

async function bulk(bucket: string): Promise<void> {
  await kvm.create(bucket, { history: 1 });
  const writer = await BulkWriter.open(bus, `KV_${bucket}`);
  for (let i = 0; i < KEYS; i++) await writer.put(`$KV.${bucket}.${keyOf(i)}`, EMPTY);
  await writer.end();
}

const results: Record<string, Array<{ ms: number; own: number; server: number }>> = { 'KV put': [], bulk: [] };
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? (['KV put', 'bulk'] as const) : (['bulk', 'KV put'] as const);
  for (const kind of order) {
    const bucket = `bench_${kind === 'bulk' ? 'bulk' : 'put'}_${round}`;
    const [t0, own0, server0] = [performance.now(), ownCpuMs(), serverCpuMs()];
    await (kind === 'bulk' ? bulk(bucket) : kvPut(bucket));
    const sample = { ms: performance.now() - t0, own: ownCpuMs() - own0, server: serverCpuMs() - server0 };
    const stored = (await bus.jsm.streams.info(`KV_${bucket}`)).state.messages;
    if (stored !== KEYS) throw new Error(`${kind}: ${stored} of ${KEYS} keys stored`);
    results[kind]!.push(sample);
    await bus.jsm.streams.delete(`KV_${bucket}`);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const per1000 = (ms: number) => ((ms * 1000) / KEYS).toFixed(1);
console.log(`| ${KEYS} keys, median of ${ROUNDS} | wall ms / 1,000 keys | client CPU ms | nats-server CPU ms |`);
console.log('|---|---:|---:|---:|');
for (const [kind, samples] of Object.entries(results)) {
  const m = (pick: (s: (typeof samples)[number]) => number) => per1000(median(samples.map(pick)));
  console.log(`| ${kind} | ${m((s) => s.ms)} | ${m((s) => s.own)} | ${m((s) => s.server)} |`);
}
await bus.close();
await nats.dispose();
