import { createLogger } from '@sluice/telemetry';
import { type NatsClusterHandle, startNatsCluster } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { decodeJson } from '../src/codec.js';
import { followFrom } from '../src/lifecycle/subject-reader.js';
import { followStream } from '../src/stream-follower.js';

const logger = createLogger({ service: 'bus-follower-node-loss-test', level: 'silent' });

/**
 * Replays chaos seed 2's stall: a reporter follows the outcomes with an ordered consumer, which is
 * a single-replica consumer living on one node of the cluster. That node was SIGKILLed and
 * restarted; the reporter's connection, to another node, never dropped, so the client noticed
 * only by missed idle heartbeats — two of them at the client's default of 15 s (half the 30 s
 * pull expiry). For that half minute, twice (two node kills), the reporter saw no outcome: the
 * run stalled until the reconciler took 87 settled tasks for lost and published them again.
 */
describe('a live follower whose consumer lives on a node that is killed', () => {
  let cluster: NatsClusterHandle;
  let bus: Bus;
  let publisher: Bus;

  beforeAll(async () => {
    cluster = await startNatsCluster({ size: 3 });
    // The follower's client talks to the first node only; it keeps that connection throughout.
    bus = await connectBus({ servers: cluster.nodes[0]!.url, name: 'follower-node-loss' }, logger);
    publisher = await connectBus({ servers: cluster.url, name: 'follower-node-loss-pub' }, logger);
    await bus.jsm.streams.add({ name: 'F', subjects: ['f.>'], num_replicas: 3 });
  }, 90_000);
  afterAll(async () => {
    await bus?.close();
    await publisher?.close();
    await cluster?.dispose();
  }, 60_000);

  /** The node that hosts the newest consumer on the stream (the follower's), by its server name. */
  async function consumerNode(): Promise<string | undefined> {
    let newest: { created: string; leader?: string } | undefined;
    for await (const c of bus.jsm.consumers.list('F'))
      if (!newest || c.created > newest.created) newest = { created: c.created, leader: c.cluster?.leader };
    return newest?.leader;
  }

  /** Kills a node, restarts it after 2 s, and waits until every node answers again. */
  async function bounce(name: string): Promise<void> {
    const node = cluster.nodes.find((n) => n.name === name)!;
    await node.kill();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    await node.start();
    await cluster.waitReady(30_000);
  }

  /** Publishes `n` messages after the outage and waits for the follower to have `total`. */
  async function publishAfter(subject: string, from: number, n: number): Promise<void> {
    for (let i = from; i < from + n; i++) {
      // The stream may be electing a leader right after the restart: ask again.
      await expect
        .poll(
          () =>
            publisher.publish(subject, { i }, { msgId: `${subject}:${i}` }).then(
              () => true,
              () => false,
            ),
          {
            timeout: 15_000,
            interval: 200,
          },
        )
        .toBe(true);
    }
  }

  for (const kind of ['followFrom', 'followStream'] as const) {
    it(`${kind}: goes on within seconds after the consumer's node comes back, every message once, in order`, async () => {
      const subject = `f.${kind}`;
      const seen: number[] = [];
      const handler = (m: { subject: string; data: Uint8Array }) => {
        if (m.subject === subject) seen.push((decodeJson(m.data) as { i: number }).i);
      };
      await publishAfter(subject, 0, 3);
      const start = () =>
        kind === 'followFrom'
          ? followFrom(bus, 'F', subject, 1, logger, handler)
          : followStream(bus, 'F', logger, handler);
      // The consumer must live on another node than the follower's connection: losing the
      // connection's own node is a reconnect, which the client handles at once. Placement is the
      // server's choice, so start again until it is elsewhere.
      let follower = await start();
      let node = await consumerNode();
      for (let attempt = 1; (node === undefined || node === cluster.nodes[0]!.name) && attempt < 10; attempt++) {
        await follower.stop();
        seen.length = 0;
        follower = await start();
        node = await consumerNode();
      }
      try {
        expect(node).toBeDefined();
        expect(node).not.toBe(cluster.nodes[0]!.name);
        await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(3);
        await bounce(node!);
        const healed = Date.now();
        await publishAfter(subject, 3, 5);
        // Without the short idle heartbeat: 30–60 s (two missed 15 s heartbeats, once or twice).
        await expect.poll(() => seen.length, { timeout: 12_000, interval: 100 }).toBe(8);
        console.log(`${kind}: every message ${Date.now() - healed} ms after the node was back`);
        expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      } finally {
        await follower.stop();
      }
    }, 90_000);
  }
});
