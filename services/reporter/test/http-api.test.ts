import { decodeJson, readSubject } from '@sluice/bus';
import { REQUEST_SUBJECT, runEventSubject, STREAMS } from '@sluice/contracts';
import { lostRunEvent } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { ReporterService } from '../src/reporter-service.js';
import { type ReporterHarness, reporterHarness } from './support.js';

describe('reporter HTTP API', () => {
  let h: ReporterHarness;
  let reporter: ReporterService;
  const call = (method: string, path: string, body?: unknown) => h.http(reporter, method, path, body);

  beforeAll(async () => {
    h = await reporterHarness();
    reporter = await h.startReporter();
    await h.accept('api1');
    await h.planTask('api1', 'a');
    await h.planTask('api1', 'b');
    await h.planTask('api1', 'c');
    await h.plan('api1', 3);
    await h.settle('api1', 'a', 'failed', 'sql_error');
    await h.settle('api1', 'b');
    for (let i = 0; i < 100 && (await call('GET', '/runs/api1')).body.done !== 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
  });
  afterAll(async () => {
    await h?.dispose();
  });

  it('answers health, and lists runs', async () => {
    expect(await call('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const list = await call('GET', '/runs');
    expect(list.status).toBe(200);
    expect((list.body.runs as Array<{ runId: string }>).map((r) => r.runId)).toContain('api1');
    expect(((await call('GET', '/runs?status=succeeded')).body.runs as unknown[]).length).toBe(0);
    expect(await call('GET', '/runs?limit=zero')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('limit') as string },
    });
  });

  it('shows one run with counts, rate and control state', async () => {
    const run = await call('GET', '/runs/api1');
    expect(run.status).toBe(200);
    expect(run.body).toMatchObject({
      runId: 'api1',
      status: 'running',
      total: 3,
      done: 2,
      counts: { failed: 1, migrated: 1 },
      control: { state: 'running' },
      completed: null,
    });
    expect(await call('GET', '/runs/nope')).toMatchObject({ status: 404, body: { error: 'no run nope' } });
    expect((await call('GET', '/runs/bad.id')).status).toBe(404);
  });

  it('shows a run lost with the JetStream store as lost, with what was known and the recover command', async () => {
    const lost = lostRunEvent('api-lost', { by: 'sluice-reporter' });
    await h.bus.publish(runEventSubject('api-lost', 'lost'), lost);
    // Late outcomes of a lost run (tenants that were being migrated) open no run.
    await h.settle('api-lost', 'late');
    await expect.poll(async () => (await call('GET', '/runs/api-lost')).status, { timeout: 5_000 }).toBe(200);
    expect((await call('GET', '/runs/api-lost')).body).toEqual({
      runId: 'api-lost',
      status: 'lost',
      targetVersion: 3,
      total: 40,
      done: 8,
      acceptedAt: '2026-11-30T03:45:22.551Z',
      finishedAt: null,
      completed: null,
      lost,
      recover: 'sluice runs recover api-lost',
    });
    const lostOnly = (await call('GET', '/runs?status=lost')).body.runs as Array<{ runId: string }>;
    expect(lostOnly.map((r) => r.runId)).toEqual(['api-lost']);
    expect(((await call('GET', '/runs')).body.runs as Array<{ runId: string }>).map((r) => r.runId)).toContain(
      'api-lost',
    );
    expect(
      ((await call('GET', '/runs?status=running')).body.runs as Array<{ runId: string }>).map((r) => r.runId),
    ).not.toContain('api-lost');
    // Nothing to list or control: its outcomes and tasks went with the store.
    expect(await call('GET', '/runs/api-lost/tenants')).toMatchObject({
      status: 409,
      body: { status: 'lost', recover: 'sluice runs recover api-lost' },
    });
    expect((await call('POST', '/runs/api-lost/pause', {})).status).toBe(409);
  });

  it('lists the tenants of a run by status, including those still without an outcome', async () => {
    const failed = await call('GET', '/runs/api1/tenants?status=failed');
    expect(failed.body).toMatchObject({
      runId: 'api1',
      status: 'failed',
      count: 1,
      tenants: [{ tenantId: 'a', status: 'failed', error: { code: 'sql_error' } }],
    });
    expect((await call('GET', '/runs/api1/tenants')).body.count).toBe(2);
    expect((await call('GET', '/runs/api1/tenants?status=unsettled')).body).toMatchObject({
      count: 1,
      tenants: [{ tenantId: 'c', task: 'queued' }],
    });
    expect(await call('GET', '/runs/api1/tenants?status=broken')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('status must be one of') as string },
    });
  });

  it('validates a migration request before it publishes it', async () => {
    expect(await call('POST', '/runs', '{nope')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('not JSON') as string },
    });
    expect(await call('POST', '/runs', '')).toMatchObject({
      status: 400,
      body: { error: expect.stringContaining('empty') as string },
    });
    const bad = await call('POST', '/runs', {
      runId: 'bad id',
      target: 'latest',
      surprise: true,
      rollout: { maxFailureRate: 2 },
    });
    expect(bad.status).toBe(400);
    expect((bad.body.issues as string[]).join('\n')).toMatch(
      /runId[\s\S]*rollout\.maxFailureRate|rollout\.maxFailureRate[\s\S]*runId/,
    );
    expect((bad.body.issues as string[]).join('\n')).toMatch(/surprise/);
    expect(await call('POST', '/runs', { runId: 'api1', target: 'latest' })).toMatchObject({
      status: 409,
      body: { error: expect.stringContaining('taken') as string },
    });
    const ok = await call('POST', '/runs', {
      runId: 'api-new',
      target: 'latest',
      rollout: { canary: 5, maxFailureRate: 0.05 },
    });
    expect(ok).toMatchObject({ status: 202, body: { runId: 'api-new', published: true, run: '/runs/api-new' } });
    const requests: unknown[] = [];
    await readSubject(h.bus, STREAMS.requests.name, REQUEST_SUBJECT, (m) => void requests.push(decodeJson(m.data)));
    // Who asked is the token's name (the test token is called testkit), not the body's word.
    expect(requests).toContainEqual({
      runId: 'api-new',
      target: 'latest',
      requestedBy: 'testkit',
      rollout: { canary: 5, maxFailureRate: 0.05 },
    });
  });

  it('pauses, resumes and cancels, refusing what does not apply', async () => {
    expect(await call('POST', '/runs/nope/pause')).toMatchObject({ status: 404 });
    expect(await call('POST', '/runs/api1/resume')).toMatchObject({
      status: 409,
      body: { error: 'run api1 is not paused', status: 'running' },
    });
    expect(await call('POST', '/runs/api1/pause', { why: 'typo' })).toMatchObject({
      status: 400,
      body: { issues: [expect.stringContaining('why') as string] },
    });
    expect(await call('POST', '/runs/api1/pause', { reason: 'db maintenance', requestedBy: 'ops' })).toMatchObject({
      status: 202,
      body: { action: 'pause', accepted: true },
    });
    await expect.poll(async () => (await call('GET', '/runs/api1')).body.status).toBe('paused');
    expect((await call('GET', '/runs/api1')).body.control).toMatchObject({
      state: 'paused',
      // The token's name wins over the body's requestedBy.
      note: { action: 'pause', reason: 'db maintenance', requestedBy: 'testkit' },
    });
    expect(await call('POST', '/runs/api1/pause')).toMatchObject({
      status: 409,
      body: { error: 'run api1 is already paused' },
    });
    expect(await call('POST', '/runs/api1/resume')).toMatchObject({ status: 202 });
    await expect.poll(async () => (await call('GET', '/runs/api1')).body.status).toBe('running');
    expect(await call('POST', '/runs/api1/cancel', { reason: 'enough' })).toMatchObject({ status: 202 });
    await expect.poll(async () => (await call('GET', '/runs/api1')).body.status).toBe('cancelling');
    expect(await call('POST', '/runs/api1/pause')).toMatchObject({
      status: 409,
      body: { error: 'run api1 is being cancelled' },
    });
    await h.settle('api1', 'c', 'skipped', 'cancelled');
    await expect.poll(async () => (await call('GET', '/runs/api1')).body.status).toBe('cancelled');
    expect(await call('POST', '/runs/api1/resume')).toMatchObject({
      status: 409,
      body: { error: 'run api1 has already completed (cancelled)' },
    });
  });

  it('answers wrong methods and unknown routes with JSON errors', async () => {
    const wrong = await call('GET', '/runs/api1/pause');
    expect(wrong).toMatchObject({ status: 405, body: { error: expect.stringContaining('use POST') as string } });
    expect(wrong.headers.get('allow')).toBe('POST');
    expect((await call('DELETE', '/runs')).status).toBe(405);
    expect(await call('GET', '/nothing')).toMatchObject({ status: 404, body: { error: 'no route /nothing' } });
  });
});
