import { AckPolicy, DeliverPolicy } from '@nats-io/jetstream';
import { decodeJson, openRunControlStore } from '@sluice/bus';
import { ADVISORY_STREAM, hostConsumerName, runEventSubject, STREAMS, taskSubject } from '@sluice/contracts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { HOST, type ReporterHarness, reporterHarness } from './support.js';

describe('reporter service against a real nats-server', () => {
  let h: ReporterHarness;

  beforeAll(async () => {
    h = await reporterHarness();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  it('parks nothing itself: publishes parked tasks again on resume, and skips them on cancel', async () => {
    const reporter = await h.startReporter();
    await h.accept('p1');
    const seqs = [await h.planTask('p1', 't1'), await h.planTask('p1', 't2'), await h.planTask('p1', 't3')];
    await h.plan('p1', 3);
    await h.control('p1', 'pause', 'maintenance');
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/p1')).body.status).toBe('paused');
    const controls = await openRunControlStore(h.bus);
    await expect.poll(async () => (await controls.get('p1'))?.state).toBe('paused');

    // Executors took t1 and t2 while paused and parked them.
    await h.park('p1', 't1', seqs[0]!);
    await h.park('p1', 't2', seqs[1]!);
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/p1')).body.parked).toBe(2);
    expect((await h.ledger('p1')).filter((e) => e.kind === 'republished')).toHaveLength(0);

    await h.control('p1', 'resume');
    await expect.poll(async () => (await h.ledger('p1')).filter((e) => e.kind === 'republished').length).toBe(2);
    const republished = (await h.ledger('p1')).filter((e) => e.kind === 'republished');
    expect(republished.map((e) => e.kind === 'republished' && e.cause)).toEqual(['parked', 'parked']);
    // The copies are new messages in the work queue, with fresh message ids.
    for (const e of republished) {
      if (e.kind !== 'republished') continue;
      const stored = await h.bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: e.taskSeq });
      expect(stored?.header.get('Nats-Msg-Id')).toBe(`p1:${e.tenantId}:x${e.supersedes}`);
    }

    // Paused again, t1's new copy is parked again; then the run is cancelled: t1 is skipped by the reporter.
    await h.control('p1', 'pause');
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/p1')).body.status).toBe('paused');
    const t1copy = republished.find((e) => e.kind === 'republished' && e.tenantId === 't1');
    await h.park('p1', 't1', t1copy!.kind === 'republished' ? t1copy!.taskSeq : 0);
    await h.control('p1', 'cancel', 'wrong target');
    await expect
      .poll(async () => (await h.outcomes('p1')).find((o) => o.tenantId === 't1')?.error?.code)
      .toBe('cancelled');
    // The executors skip the others; then the run completes cancelled.
    await h.settle('p1', 't2', 'skipped', 'cancelled');
    await h.settle('p1', 't3', 'skipped', 'cancelled');
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/p1')).body.status).toBe('cancelled');
    const [completed] = await h.events('p1', 'completed');
    expect(completed?.data).toMatchObject({
      status: 'cancelled',
      counts: { total: 3, skipped: 3 },
      stoppedBy: { action: 'cancel', reason: 'wrong target' },
    });
    await expect.poll(async () => (await controls.get('p1'))?.final).toBe('cancelled');
    await reporter.stop();
  });

  it('publishes a task again when it vanished from the work queue without an outcome', async () => {
    const reporter = await h.startReporter({ SLUICE_RECONCILE_AFTER: '300ms', SLUICE_RECONCILE_INTERVAL: '100ms' });
    await h.accept('lost1');
    const lost = await h.planTask('lost1', 'gone');
    await h.planTask('lost1', 'queued');
    await h.plan('lost1', 2);
    await h.bus.jsm.streams.deleteMessage(STREAMS.tasks.name, lost);
    await expect
      .poll(async () => (await h.ledger('lost1')).filter((e) => e.kind === 'republished'), { timeout: 10_000 })
      .toHaveLength(1);
    const [entry] = (await h.ledger('lost1')).filter((e) => e.kind === 'republished');
    expect(entry).toMatchObject({ tenantId: 'gone', cause: 'lost' });
    // The task still in the queue is left alone.
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect((await h.ledger('lost1')).filter((e) => e.kind === 'republished')).toHaveLength(1);
    await h.settle('lost1', 'gone');
    await h.settle('lost1', 'queued');
    await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/lost1')).body.status).toBe('succeeded');
    await reporter.stop();
  });

  it("publishes again, and removes, a task queued below its host consumer's ack floor; a dead one stays dead", async () => {
    // nats-server 2.9 was seen (chaos seed 14) to leave a consumer whose state had moved past tasks
    // it never delivered: they stayed in the work queue, and nothing would ever have run them. Made
    // here with a consumer of one delivery: two tasks delivered and never acknowledged fall below
    // the ack floor once a later one is acknowledged. The advisory of one is removed: that one
    // looks exactly like a stranded task; the other is a dead task (its advisory kept).
    // Earlier tests' tasks for the same host would be delivered first.
    await h.bus.jsm.streams.purge(STREAMS.tasks.name, { filter: taskSubject(HOST) });
    await h.accept('strand1');
    const below = await h.planTask('strand1', 'below');
    const dead = await h.planTask('strand1', 'dead');
    const filler = await h.bus.publish(taskSubject(HOST), { not: 'a task of any run' });
    const consumer = hostConsumerName(HOST);
    await h.bus.jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: consumer,
      filter_subject: taskSubject(HOST),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_deliver: 1,
      ack_wait: 300_000_000,
    });
    try {
      const pull = await h.bus.js.consumers.get(STREAMS.tasks.name, consumer);
      expect((await pull.next({ expires: 2_000 }))?.seq).toBe(below);
      expect((await pull.next({ expires: 2_000 }))?.seq).toBe(dead);
      // Past the ack wait, the next pull finds both out of deliveries (their advisories go out).
      await new Promise((resolve) => setTimeout(resolve, 600));
      const third = await pull.next({ expires: 5_000 });
      expect(third?.seq).toBe(filler.seq);
      await third!.ackAck();
      const advisories = async () => {
        const { state } = await h.bus.jsm.streams.info(ADVISORY_STREAM.name);
        const found: Array<{ seq: number; streamSeq: number }> = [];
        for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
          const m = await h.bus.jsm.streams.getMessage(ADVISORY_STREAM.name, { seq });
          if (m) found.push({ seq, streamSeq: (decodeJson(m.data) as { stream_seq: number }).stream_seq });
        }
        return found;
      };
      await expect.poll(async () => (await advisories()).length, { timeout: 10_000 }).toBe(2);
      await expect
        .poll(async () => (await h.bus.jsm.consumers.info(STREAMS.tasks.name, consumer)).ack_floor.stream_seq)
        .toBe(filler.seq);
      const belowAdvisory = (await advisories()).find((a) => a.streamSeq === below)!;
      await h.bus.jsm.streams.deleteMessage(ADVISORY_STREAM.name, belowAdvisory.seq);

      const reporter = await h.startReporter({ SLUICE_RECONCILE_AFTER: '300ms', SLUICE_RECONCILE_INTERVAL: '100ms' });
      const waiting = await h.planTask('strand1', 'above');
      await h.plan('strand1', 3);
      await expect
        .poll(async () => (await h.ledger('strand1')).filter((e) => e.kind === 'republished'), { timeout: 10_000 })
        .toHaveLength(1);
      const [entry] = (await h.ledger('strand1')).filter((e) => e.kind === 'republished');
      expect(entry).toMatchObject({ tenantId: 'below', cause: 'stranded' });
      // The new copy is above the floor and the stranded one gone; the dead task is failed by its
      // advisory and kept for inspection; the deliverable task is left alone.
      expect(entry!.kind === 'republished' && entry!.taskSeq).toBeGreaterThan(waiting);
      expect(await h.bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: below })).toBeNull();
      expect(await h.bus.jsm.streams.getMessage(STREAMS.tasks.name, { seq: dead })).not.toBeNull();
      await expect
        .poll(async () => (await h.outcomes('strand1')).map((o) => `${o.tenantId}:${o.error?.code ?? o.status}`))
        .toEqual(['dead:max_deliveries']);
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect((await h.ledger('strand1')).filter((e) => e.kind === 'republished')).toHaveLength(1);
      await h.settle('strand1', 'below');
      await h.settle('strand1', 'above');
      await expect.poll(async () => (await h.http(reporter, 'GET', '/runs/strand1')).body.status).toBe('partial');
      await reporter.stop();
    } finally {
      await h.bus.jsm.consumers.delete(STREAMS.tasks.name, consumer);
    }
  });

  it('with two replicas: one completed event, progress at most once per interval, one rollout decision', async () => {
    const a = await h.startReporter();
    const b = await h.startReporter();
    await h.accept('dup1', { rollout: { canary: 2 } });
    for (let i = 0; i < 30; i++) await h.planTask('dup1', `t${i}`, i < 2 ? 'canary' : 'fleet');
    await h.plan('dup1', 30, { canaries: 2 });
    for (let i = 0; i < 30; i++) {
      await h.settle('dup1', `t${i}`);
      await new Promise((resolve) => setTimeout(resolve, 60));
    }
    for (const r of [a, b])
      await expect.poll(async () => (await h.http(r, 'GET', '/runs/dup1')).body.status).toBe('succeeded');
    const info = await h.bus.jsm.streams.info(STREAMS.runs.name, {
      subjects_filter: runEventSubject('dup1', 'completed'),
    });
    expect(info.state.subjects?.[runEventSubject('dup1', 'completed')]).toBe(1);
    expect(await h.events('dup1', 'control')).toHaveLength(1);
    const progress = await h.events('dup1', 'progress');
    expect(progress.length).toBeGreaterThanOrEqual(3);
    const gaps = progress.slice(1).map((p, i) => p.time - progress[i]!.time);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(300);
    expect((await h.http(a, 'GET', '/runs/dup1')).body.counts).toEqual(
      (await h.http(b, 'GET', '/runs/dup1')).body.counts,
    );
    await a.stop();
    await b.stop();
  });

  it('after a restart replays only the runs that have not completed, and resumes their exact counts', async () => {
    const first = await h.startReporter();
    await h.accept('old1');
    await h.plan('old1', 20);
    for (let i = 0; i < 20; i++) await h.settle('old1', `t${i}`);
    await expect.poll(async () => (await h.http(first, 'GET', '/runs/old1')).body.status).toBe('succeeded');
    await h.accept('open1');
    await h.plan('open1', 10);
    for (let i = 0; i < 6; i++)
      await h.settle('open1', `t${i}`, i === 0 ? 'failed' : 'migrated', i === 0 ? 'sql_error' : undefined);
    await h.settle('open1', 't1');
    await expect.poll(async () => (await h.http(first, 'GET', '/runs/open1')).body.done).toBe(6);
    await first.stop();

    // While no reporter runs, more outcomes arrive (one a repeat).
    await h.settle('open1', 't6');
    await h.bus.publish('sluice.outcomes.open1', {
      runId: 'open1',
      tenantId: 't2',
      status: 'failed',
      applied: [],
      attempts: 2,
      finishedAt: new Date().toISOString(),
    });
    const second = await h.startReporter();
    expect(second.startup.outcomes).toBe(8);
    expect((await h.http(second, 'GET', '/runs/open1')).body).toMatchObject({
      status: 'running',
      done: 7,
      counts: { migrated: 6, failed: 1 },
    });
    expect((await h.http(second, 'GET', '/runs/old1')).body).toMatchObject({
      status: 'succeeded',
      counts: { migrated: 20 },
    });
    for (let i = 7; i < 10; i++) await h.settle('open1', `t${i}`);
    await expect.poll(async () => (await h.http(second, 'GET', '/runs/open1')).body.status).toBe('partial');
    const completed = await h.events('open1', 'completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]!.data).toMatchObject({ counts: { total: 10, migrated: 9, failed: 1 } });
    await second.stop();
  });
});
