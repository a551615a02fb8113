// The fleet benchmark's delay proxies, in a process of their own so that no contender's CPU
// (the bench process runs the in-process pools) includes the proxies' work. Started with the
// hosts' ports as arguments; prints `{"ports":[…]}` once listening; each stdin line `delay N`
// sets the round-trip delay of every proxy and is answered with `ok N`.
import { createInterface } from 'node:readline';

import { startDelayProxy } from '@sluice/testkit';

const targets = process.argv.slice(2).map(Number);
const proxies = await Promise.all(targets.map((port) => startDelayProxy({ port }, 0)));
process.stdout.write(`${JSON.stringify({ ports: proxies.map((p) => p.port) })}\n`);
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const match = /^delay (\d+)$/.exec(line.trim());
  if (!match) return;
  for (const p of proxies) p.setDelay(Number(match[1]));
  process.stdout.write(`ok ${match[1]}\n`);
});
lines.on('close', () => {
  void Promise.all(proxies.map((p) => p.close())).then(() => process.exit(0));
});
