import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

import { jetstream, type JetStreamManager } from '@nats-io/jetstream';
import { REJECTED_SUBJECT, type RejectedEvent, REQUEST_SUBJECT, STREAMS } from '@sluice/contracts';
import { apiHeaders, listRejected, REPO_ROOT, waitForCompleted, withFleetStack } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type BadCase, generateBadControls, generateBadRequests } from './bad-input-cases.js';

const run = promisify(execFile);
const CLI = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'main.js');
const SEED = Number(process.env.SLUICE_FUZZ_SEED ?? Date.now() % 2 ** 31);
const REQUESTS = 1_100;
const CONTROLS = 80;
const TENANTS = 4;

/** One row of the report: a class of bad input, how many were sent, and what became of them. */
const table = new Map<string, { sent: number; result: string }>();
function tally(kind: string, result: string): void {
  const row = table.get(kind) ?? { sent: 0, result };
  row.sent += 1;
  table.set(kind, row);
}

describe(`bad input is rejected with its reason and changes nothing (seed ${SEED}; SLUICE_FUZZ_SEED=${SEED} replays it)`, () => {
  // One request at a time, so the rejections come out in the order the requests went in.
  const stack = withFleetStack(
    { beforeAll, afterAll },
    {
      fleets: [{ count: TENANTS, prefix: `sluice_fx_bad_${process.pid}` }],
      env: { SLUICE_PLANNER_CONCURRENCY: '1', LOG_LEVEL: 'warn', PATH: process.env.PATH ?? '' },
      services: (['reporter', 'executor', 'planner'] as const).map((name) => ({ name, env: { LOG_LEVEL: 'info' } })),
    },
  );
  let jsm: JetStreamManager;
  let reporterPort: number;
  const pids = new Map<string, number>();

  beforeAll(async () => {
    console.log(`bad-input seed: ${SEED}`);
    for (const s of stack.services) pids.set(s.name, s.pid);
    reporterPort = (await stack.services[0]!.waitForLog((l) => l.msg === 'reporter ready')).httpPort as number;
    jsm = await jetstream(stack.nc).jetstreamManager();
  });

  afterAll(() => {
    console.log(
      `bad input (seed ${SEED}):\n${[...table.entries()]
        .sort()
        .map(([kind, r]) => `  ${kind.padEnd(44)} ${String(r.sent).padStart(5)}  ${r.result}`)
        .join('\n')}`,
    );
  });

  async function subjectCount(stream: string, filter: string): Promise<number> {
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  }

  async function http(
    method: string,
    urlPath: string,
    body?: string | Uint8Array,
  ): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`http://127.0.0.1:${reporterPort}${urlPath}`, {
      method,
      headers: apiHeaders(),
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.text();
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  }

  /** Every service is the process it was at the start, and the reporter answers healthy. */
  async function expectServicesUnchanged(): Promise<void> {
    for (const s of stack.services) {
      expect(s.pid).toBe(pids.get(s.name));
      expect(() => process.kill(s.pid, 0)).not.toThrow();
      expect(s.logs.filter((l) => l.level === 'fatal' || l.level === 'error')).toEqual([]);
    }
    expect(await http('GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
  }

  it(`answers ${REQUESTS} malformed requests with one rejected event each, with the reason, and creates no run`, async () => {
    const cases = generateBadRequests(SEED, REQUESTS);
    const js = jetstream(stack.nc);
    const started = performance.now();
    // Published in order, acknowledged by the stream; the planner takes them one by one.
    const sent: Array<{ c: BadCase; seq: number }> = [];
    for (let i = 0; i < cases.length; i += 100) {
      const acks = await Promise.all(cases.slice(i, i + 100).map((c) => js.publish(REQUEST_SUBJECT, c.bytes)));
      acks.forEach((ack, j) => sent.push({ c: cases[i + j]!, seq: ack.seq }));
    }
    sent.sort((a, b) => a.seq - b.seq);
    // Over the server's max_payload (1 MB): refused at publish, never reaches the planner.
    await expect(js.publish(REQUEST_SUBJECT, new Uint8Array(1_100_000))).rejects.toThrow(/MAX_PAYLOAD|payload/i);
    tally('payload over max_payload (1.1 MB)', 'refused by NATS at publish (client error); nothing stored');

    await expect
      .poll(() => subjectCount(STREAMS.runs.name, REJECTED_SUBJECT), { timeout: 90_000, interval: 250 })
      .toBe(cases.length);
    const rejected = await listRejected(stack.nc);
    console.log(`${cases.length} malformed requests rejected in ${Math.round(performance.now() - started)} ms`);
    expect(rejected).toHaveLength(cases.length);
    const mismatches: string[] = [];
    rejected.forEach((event: RejectedEvent, i) => {
      const { c } = sent[i]!;
      const joined = event.reasons.join(' | ');
      const ok =
        c.reason.test(joined) &&
        event.runId === c.runId &&
        event.subject === undefined &&
        event.reasons.length >= 1 &&
        event.reasons.length <= 20 &&
        event.reasons.every((r) => r.length <= 500) &&
        !Number.isNaN(Date.parse(event.rejectedAt));
      tally(c.kind, 'rejected event with the reason; no run');
      if (!ok)
        mismatches.push(
          `#${i} ${c.kind}: expected ${c.reason} (runId ${c.runId}), got runId ${event.runId}: ${joined.slice(0, 300)}`,
        );
    });
    expect(mismatches).toEqual([]);

    // No run: nothing accepted or planned, no runId claimed, nothing listed.
    expect(await subjectCount(STREAMS.runs.name, 'sluice.runs.>')).toBe(0);
    expect((await jsm.streams.info('KV_sluice_runs')).state.messages).toBe(0);
    expect((await jsm.streams.info(STREAMS.tasks.name)).state.messages).toBe(0);
    expect(await http('GET', '/runs')).toMatchObject({ status: 200, body: { runs: [] } });
    const cli = await run(process.execPath, [CLI, 'runs', '--json'], { env: stack.env });
    expect(cli.stdout.trim()).toBe('');
    await expectServicesUnchanged();
    expect(stack.fleet.tenants.length).toBe(TENANTS);
    const touched = await stack.fleet.eachTenant(
      async (c) =>
        (await c.query<{ r: string | null }>("SELECT to_regclass('public.sluice_migrations')::text AS r")).rows[0]!.r,
    );
    expect(touched.every((r) => r === null)).toBe(true);
  });

  it('runs a valid request sent after them normally', async () => {
    await jetstream(stack.nc).publish(REQUEST_SUBJECT, JSON.stringify({ runId: 'fx-bad-after', target: 'latest' }));
    const completed = await waitForCompleted(stack.nc, 'fx-bad-after', 60_000);
    expect(completed).toMatchObject({ status: 'succeeded', counts: { total: TENANTS, migrated: TENANTS, failed: 0 } });
    const journals = await stack.fleet.eachTenant(
      async (c) => (await c.query<{ n: number }>('SELECT count(*)::int AS n FROM sluice_migrations')).rows[0]!.n,
    );
    expect(journals).toEqual(Array.from({ length: TENANTS }, () => 6));
    const cli = await run(process.execPath, [CLI, 'runs', '--json'], { env: stack.env });
    expect(
      cli.stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { runId: string }).runId),
    ).toEqual(['fx-bad-after']);
  });

  it(`answers ${CONTROLS} malformed control events (and controls of unknown runs) with rejected events, and they change nothing`, async () => {
    const before = await subjectCount(STREAMS.runs.name, REJECTED_SUBJECT);
    const controls = generateBadControls(SEED, 'fx-bad-after', CONTROLS);
    const js = jetstream(stack.nc);
    for (const c of controls) await js.publish(c.subject, c.bytes);
    await expect
      .poll(() => subjectCount(STREAMS.runs.name, REJECTED_SUBJECT), { timeout: 30_000, interval: 250 })
      .toBe(before + controls.length);
    const answers = (await listRejected(stack.nc)).slice(before);
    const mismatches: string[] = [];
    answers.forEach((event, i) => {
      const c = controls[i]!;
      const joined = event.reasons.join(' | ');
      tally(c.kind, 'rejected event (with subject) from the reporter; run unchanged');
      if (!(c.reason.test(joined) && event.subject === c.subject && event.runId === c.runId)) {
        mismatches.push(
          `#${i} ${c.kind} on ${c.subject}: expected ${c.reason} (runId ${c.runId}), got ${event.subject} runId ${event.runId}: ${joined.slice(0, 200)}`,
        );
      }
    });
    expect(mismatches).toEqual([]);
    // The run is as it was; ghost runs do not appear.
    const runs = (await http('GET', '/runs')).body.runs as Array<{ runId: string; status: string }>;
    expect(runs.map((r) => [r.runId, r.status])).toEqual([['fx-bad-after', 'succeeded']]);
    expect(await subjectCount(STREAMS.runs.name, 'sluice.runs.fx-bad-after.completed')).toBe(1);
    await expectServicesUnchanged();
  });

  it('answers malformed HTTP bodies and paths with a clear 4xx, and stays up', async () => {
    const json = (v: unknown) => JSON.stringify(v);
    const checks: Array<
      [kind: string, method: string, path: string, body: string | Uint8Array | undefined, status: number, error: RegExp]
    > = [
      ['HTTP: body not JSON', 'POST', '/runs', '{"runId": "x", ', 400, /request body is not JSON/],
      ['HTTP: body not JSON', 'POST', '/runs', new Uint8Array([0xff, 0x00, 0xfe]), 400, /request body is not JSON/],
      ['HTTP: empty body', 'POST', '/runs', '', 400, /request body is empty/],
      ['HTTP: body over 4 MB', 'POST', '/runs', 'x'.repeat(4 * 1024 * 1024 + 10), 413, /larger than/],
      [
        'HTTP: runId taken',
        'POST',
        '/runs',
        json({ runId: 'fx-bad-after', target: 'latest' }),
        409,
        /runId fx-bad-after is taken/,
      ],
      [
        'HTTP: control body malformed',
        'POST',
        '/runs/fx-bad-after/pause',
        json({ reason: 5 }),
        400,
        /invalid control body/,
      ],
      ['HTTP: control body malformed', 'POST', '/runs/fx-bad-after/cancel', json([]), 400, /invalid control body/],
      [
        'HTTP: control body malformed',
        'POST',
        '/runs/fx-bad-after/resume',
        json({ reason: 'x', force: true }),
        400,
        /invalid control body/,
      ],
      ['HTTP: control body malformed', 'POST', '/runs/fx-bad-after/pause', 'pause now', 400, /not JSON/],
      ['HTTP: control that does not apply', 'POST', '/runs/fx-bad-after/resume', undefined, 409, /already completed/],
      ['HTTP: control of an unknown run', 'POST', '/runs/fx-ghost/pause', undefined, 404, /no run fx-ghost/],
      ['HTTP: malformed path', 'POST', '/runs/bad$id/pause', undefined, 404, /no route/],
      ['HTTP: malformed path', 'POST', '/runs/fx-bad-after/delete', undefined, 404, /no route/],
      ['HTTP: malformed path', 'GET', `/runs/${'x'.repeat(65)}`, undefined, 404, /no route/],
      ['HTTP: malformed path', 'GET', '/runs/%00%ff/tenants', undefined, 404, /no route/],
      ['HTTP: malformed path', 'GET', '/../../etc/passwd', undefined, 404, /no route/],
      ['HTTP: malformed query', 'GET', '/runs?limit=abc', undefined, 400, /limit must be/],
      ['HTTP: malformed query', 'GET', '/runs?limit=0', undefined, 400, /limit must be/],
      ['HTTP: malformed query', 'GET', '/runs?limit=1e9', undefined, 400, /limit must be/],
      [
        'HTTP: malformed query',
        'GET',
        '/runs/fx-bad-after/tenants?status=nope',
        undefined,
        400,
        /status must be one of/,
      ],
      ['HTTP: wrong method', 'DELETE', '/runs', undefined, 405, /not allowed/],
      ['HTTP: wrong method', 'PUT', '/runs/fx-bad-after/pause', undefined, 405, /not allowed/],
    ];
    // A sample of the malformed requests (those that are JSON) through POST /runs.
    for (const c of generateBadRequests(SEED + 1, 150)
      .filter((x) => x.json !== undefined && x.kind !== 'unknown target')
      .slice(0, 100)) {
      checks.push(['HTTP: malformed migration request', 'POST', '/runs', c.bytes, 400, /invalid migration request/]);
    }
    const wrong: string[] = [];
    for (const [kind, method, urlPath, body, status, error] of checks) {
      const res = await http(method, urlPath, body);
      tally(kind, `${status} with a JSON error`);
      if (res.status !== status || !error.test(String(res.body.error)))
        wrong.push(`${kind}: ${method} ${urlPath} -> ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      if (
        status === 400 &&
        /migration request|control body/.test(String(res.body.error)) &&
        !(Array.isArray(res.body.issues) && res.body.issues.length > 0)
      )
        wrong.push(`${kind}: no issues listed`);
    }
    expect(wrong).toEqual([]);

    // Request lines a URL parser refuses (`GET //`), and bytes that are not HTTP at all.
    for (const line of ['GET // HTTP/1.1', 'GET //[ HTTP/1.1', 'GET //:99999/runs HTTP/1.1', 'BLAH\u0000 ~~ HTTP/9']) {
      const answer = await rawHttp(reporterPort, `${line}\r\nHost: x\r\nConnection: close\r\n\r\n`);
      tally(
        line.startsWith('GET') ? 'HTTP: request line with no URL (GET //)' : 'HTTP: bytes that are not HTTP',
        '400',
      );
      expect(answer, line).toMatch(/^HTTP\/1\.1 400/);
    }
    await expectServicesUnchanged();
    // Nothing was published by any of it: still one run, no new request.
    expect(await subjectCount(STREAMS.runs.name, 'sluice.runs.*.accepted')).toBe(1);
  });
});

/** Sends raw bytes to an HTTP port and returns whatever comes back before the socket closes. */
function rawHttp(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let out = '';
    socket.on('data', (d: Buffer) => (out += d.toString()));
    socket.on('end', () => resolve(out));
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
  });
}
