import {
  initialControlState,
  LEDGER_STREAM,
  ledgerSubject,
  plannedTasksOf,
  type TaskLedgerEntry,
  TaskLedgerEntrySchema,
  type TenantTask,
} from '@sluice/contracts';
import { createLogger } from '@sluice/telemetry';
import { type NatsServerHandle, startDelayProxy, startNatsServer } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Bus, connectBus } from '../src/bus.js';
import { decodeJson } from '../src/codec.js';
import { publishIfLast, publishOnce } from '../src/lifecycle/publish-once.js';
import { openRunControlStore, watchRunControl } from '../src/lifecycle/run-control-store.js';
import { followFrom, lastSequence, readSubject, SubjectReadTimeoutError } from '../src/lifecycle/subject-reader.js';
import { appendLedger, ensureLedgerStream, PlannedLedger } from '../src/lifecycle/task-ledger.js';

const logger = createLogger({ service: 'bus-lifecycle-test', level: 'silent' });
const at = new Date().toISOString();
/** A task of the ledger tests. */
const ledgerTask = (runId: string, tenantId: string): TenantTask => ({
  runId,
  tenantId,
  databaseUrl: `postgres://u@h:5432/${tenantId}`,
  host: 'h:5432',
  target: 1,
  digest: 'a'.repeat(64),
  dryRun: false,
  plannedAt: at,
});

describe('run lifecycle plumbing against a real nats-server', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bus-lifecycle-test' }, logger);
    await bus.jsm.streams.add({ name: 'T', subjects: ['t.>'] });
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  it('publishOnce stores the first message of a subject only, however many try, whenever', async () => {
    const results = await Promise.all([1, 2, 3, 4].map((n) => publishOnce(bus, 't.once', { n })));
    expect(results.filter((r) => r.published)).toHaveLength(1);
    // Long after any duplicate window, and without a message id: still refused.
    expect((await publishOnce(bus, 't.once', { n: 5 })).published).toBe(false);
    const info = await bus.jsm.streams.info('T', { subjects_filter: 't.once' });
    expect(info.state.subjects?.['t.once']).toBe(1);
  });

  it('publishIfLast publishes only on top of the message it expects', async () => {
    const first = await publishIfLast(bus, 't.progress', { n: 1 }, 0);
    expect(first.published).toBe(true);
    expect((await publishIfLast(bus, 't.progress', { n: 2 }, 0)).published).toBe(false);
    expect((await publishIfLast(bus, 't.progress', { n: 2 }, first.ack!.seq)).published).toBe(true);
  });

  it('readSubject reads one subject up to a sequence; followFrom goes on from there', async () => {
    for (let i = 0; i < 5; i++) await bus.publish('t.read.a', { i });
    await bus.publish('t.read.b', { other: true });
    const until = await lastSequence(bus.jsm, 'T');
    await bus.publish('t.read.a', { i: 5 });
    const seen: number[] = [];
    expect(
      await readSubject(bus, 'T', 't.read.a', (m) => void seen.push((decodeJson(m.data) as { i: number }).i), {
        untilSeq: until,
      }),
    ).toBe(5);
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(await readSubject(bus, 'T', 't.read.none', () => undefined)).toBe(0);
    const live: number[] = [];
    const follower = await followFrom(
      bus,
      'T',
      't.read.a',
      until + 1,
      logger,
      (m) => void live.push((decodeJson(m.data) as { i: number }).i),
    );
    await bus.publish('t.read.a', { i: 6 });
    await expect.poll(() => live).toEqual([5, 6]);
    await follower.stop();
  });

  it('keeps run control states monotonic, and watchers see them', async () => {
    const store = await openRunControlStore(bus);
    expect(await store.save({ ...initialControlState('r1', undefined, 3, at), state: 'paused' })).toBe(true);
    const seen: string[] = [];
    const view = await watchRunControl(bus, { logger, onChange: (s) => seen.push(`${s.runId}:${s.state}`) });
    expect(view.get('r1')?.state).toBe('paused');
    const racers = await Promise.all(
      [4, 5, 6].map((seq) =>
        store.save({ ...initialControlState('r1', undefined, seq, at), state: seq === 6 ? 'running' : 'paused' }),
      ),
    );
    expect(racers.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect((await store.get('r1'))?.seq).toBe(6);
    expect(await store.save({ ...initialControlState('r1', undefined, 5, at), state: 'paused' })).toBe(false);
    await expect.poll(() => view.get('r1')?.state).toBe('running');
    expect(seen[0]).toBe('r1:paused');
    await view.stop();
  });

  it('appends task ledger entries once per message id', async () => {
    await ensureLedgerStream(bus.jsm);
    await ensureLedgerStream(bus.jsm);
    const task = ledgerTask('r1', 't1');
    const a = await appendLedger(bus, 'r1', { kind: 'planned', task, taskSeq: 9 });
    const b = await appendLedger(bus, 'r1', { kind: 'planned', task, taskSeq: 9 });
    expect(b.duplicate).toBe(true);
    expect(b.seq).toBe(a.seq);
    expect(await readSubject(bus, LEDGER_STREAM.name, ledgerSubject('r1'), () => undefined)).toBe(1);
  });

  it('writes planned tasks in batches: when full, after the linger, and on drain; every task once', async () => {
    await ensureLedgerStream(bus.jsm);
    const task = (i: number): TenantTask => ledgerTask('rb', `t${i}`);
    const ledger = new PlannedLedger(bus, 'rb', { maxTasks: 100, lingerMs: 20 });
    for (let i = 1; i <= 250; i++) await ledger.add({ task: task(i), taskSeq: i });
    // Two full batches are written; the 50 left go after the linger, without a drain.
    // Each is parsed as the reporter reads it: the batch's JSON is assembled from encoded tasks.
    const entries = async (): Promise<TaskLedgerEntry[]> => {
      const out: TaskLedgerEntry[] = [];
      await readSubject(bus, LEDGER_STREAM.name, ledgerSubject('rb'), (m) => {
        out.push(TaskLedgerEntrySchema.parse(m.json()));
      });
      return out;
    };
    await expect.poll(async () => (await entries()).map((e) => plannedTasksOf(e).length)).toEqual([100, 100, 50]);
    await ledger.add({ task: task(251), taskSeq: 251 });
    await ledger.drain();
    const all = (await entries()).flatMap(plannedTasksOf);
    expect(all.map((p) => p.taskSeq)).toEqual(Array.from({ length: 251 }, (_, i) => i + 1));
    expect(new Set(all.map((p) => p.task.tenantId)).size).toBe(251);
  });

  it('a batch that cannot be written fails the drain, so the plan is retried', async () => {
    const ledger = new PlannedLedger(bus, 'rb-fail', { attempts: 1 });
    await bus.jsm.streams.delete(LEDGER_STREAM.name);
    try {
      await ledger.add({
        task: ledgerTask('rb-fail', 't1'),
        taskSeq: 1,
      });
      await expect(ledger.drain()).rejects.toThrow();
    } finally {
      await ensureLedgerStream(bus.jsm);
    }
  });
});

describe('readSubject while the server cannot answer', () => {
  let nats: NatsServerHandle;
  let bus: Bus;

  beforeAll(async () => {
    nats = await startNatsServer();
    bus = await connectBus({ servers: nats.url, name: 'bus-reader-outage-test' }, logger);
    await bus.jsm.streams.add({ name: 'R', subjects: ['r.>'] });
  });
  afterAll(async () => {
    await bus?.close();
    await nats?.dispose();
  });

  /** Once the client is back after a restart. */
  async function answered(): Promise<void> {
    await expect
      .poll(
        () =>
          bus.jsm.streams.info('R').then(
            () => true,
            () => false,
          ),
        { timeout: 30_000 },
      )
      .toBe(true);
  }

  async function publishMany(subject: string, n: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, (_, i) => bus.publish(subject, { i })));
  }

  // Replays chaos seed 2: `sluice resume` said "no run" for a paused run while a NATS node
  // restarted, because a failed read counted as an empty subject; the run stayed paused.
  it('never reads an outage as an empty subject: it asks again, and finds the message', async () => {
    await bus.publish('r.run', { n: 1 });
    await nats.stop();
    const reading = readSubject(bus, 'R', 'r.run', () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    await nats.restart();
    expect(await reading).toBe(1);
  });

  it("a handler's own error is the caller's, not asked again", async () => {
    for (let i = 0; i < 3; i++) await bus.publish('r.bad', { i });
    let calls = 0;
    await expect(
      readSubject(bus, 'R', 'r.bad', () => {
        calls += 1;
        if (calls === 2) throw new Error('handler refused message 2');
      }),
    ).rejects.toThrow('handler refused message 2');
    expect(calls).toBe(2);
  });

  // Replays chaos seed 2's hang: `sluice resume` never returned when a node went away after the
  // read's consumer was open. The read resumes after the last message it handled.
  it('resumes a read whose server went away mid-read, handling each message once, in order', async () => {
    // More than one pull batch (1,000), so the stop lands with messages not yet delivered.
    const total = 2_500;
    await publishMany('r.mid', total);
    const seen: number[] = [];
    let restarted: Promise<void> | undefined;
    const count = await readSubject(
      bus,
      'R',
      'r.mid',
      async (m) => {
        const { i } = decodeJson(m.data) as { i: number };
        seen.push(i);
        if (i === 3) {
          await nats.stop();
          restarted = new Promise((resolve) => setTimeout(resolve, 1_000)).then(() => nats.restart());
        }
      },
      { stallMs: 500, timeoutMs: 60_000 },
    );
    await restarted;
    expect(count).toBe(total);
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i));
  });

  it('gives up with a typed error when the server stays away, instead of waiting for ever', async () => {
    await answered();
    await publishMany('r.gone', 2_500);
    const reading = readSubject(
      bus,
      'R',
      'r.gone',
      async (m) => {
        if ((decodeJson(m.data) as { i: number }).i === 1) await nats.stop();
      },
      { stallMs: 300, timeoutMs: 3_000 },
    );
    try {
      await expect(reading).rejects.toBeInstanceOf(SubjectReadTimeoutError);
    } finally {
      // Started again whatever the verdict, so afterAll's dispose stops a running server, not a stopped one.
      await nats.restart();
    }
  });
});

describe('readSubject when opening a consumer outlasts its stall limit', () => {
  // Replays chaos seed 2's hung `sluice pause`: during a NATS node restart a read gave up on a
  // consumer that was slow to open and tried again; the consumer opened later, nobody closed it,
  // and its idle-heartbeat timer kept the CLI's process alive after it had answered.
  it('closes the consumers it gave up on: no timer of theirs outlives the read and the bus', async () => {
    const nats = await startNatsServer();
    const proxy = await startDelayProxy({ port: nats.port }, 0);
    try {
      const bus = await connectBus({ servers: `nats://127.0.0.1:${proxy.port}`, name: 'bus-slow-open' }, logger);
      await bus.jsm.streams.add({ name: 'S', subjects: ['s.>'] });
      await bus.publish('s.x', { n: 1 });
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
      const before = timers();
      // Every answer from the server now takes 400 ms: each consumer opens after its 150 ms stall limit.
      proxy.setDelay(400);
      await expect(
        readSubject(bus, 'S', 's.x', () => undefined, { stallMs: 150, timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(SubjectReadTimeoutError);
      // The consumers given up on finish opening meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await bus.close();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(timers()).toBeLessThanOrEqual(before);
    } finally {
      await proxy.close();
      await nats.dispose();
    }
  }, 30_000);
});
