import { randomBytes } from 'node:crypto';

import { type NatsServerHandle, type ServiceProcess, startNatsServer, startService } from '@sluice/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The reporter's HTTP API as a browser, an operator with a read token, one with an operate token
 * and a stranger reach it: against a real reporter process.
 */
describe('reporter API authentication', () => {
  const alice = randomBytes(24).toString('hex');
  const bob = randomBytes(24).toString('hex');
  const stranger = randomBytes(24).toString('hex');
  let nats: NatsServerHandle;
  let reporter: ServiceProcess;
  let base: string;

  beforeAll(async () => {
    nats = await startNatsServer();
    reporter = await startService('reporter', {
      NATS_URL: nats.url,
      LOG_LEVEL: 'debug',
      SLUICE_API_TOKENS: `alice:operate:${alice},bob:read:${bob}`,
    });
    const ready = await reporter.waitForLog((l) => l.msg === 'reporter ready');
    base = `http://127.0.0.1:${String(ready.httpPort)}`;
  });
  afterAll(async () => {
    await reporter?.stop();
    await nats?.dispose();
  });

  const call = async (method: string, route: string, headers: Record<string, string> = {}, body?: string) => {
    const res = await fetch(`${base}${route}`, { method, headers, ...(body === undefined ? {} : { body }) });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  const json = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  const request = (runId: string) => JSON.stringify({ runId, target: 'latest', requestedBy: 'mallory' });

  it("refuses a browser's cross-site text/plain POST, and sends no CORS header", async () => {
    // What a page on another site can send without a preflight: a simple request, no Authorization.
    const r = await call(
      'POST',
      '/runs',
      { origin: 'https://evil.example', 'content-type': 'text/plain;charset=UTF-8' },
      request('csrf-1'),
    );
    expect(r.status).toBe(401);
    expect(r.body.error).toMatch(/authentication required/);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
    // Even with a token (a page cannot add one), a text/plain POST is not JSON: 415.
    const typed = await call(
      'POST',
      '/runs',
      { authorization: `Bearer ${alice}`, 'content-type': 'text/plain' },
      request('csrf-2'),
    );
    expect(typed).toMatchObject({
      status: 415,
      body: { error: expect.stringContaining('application/json') as string },
    });
    // A preflight gets no CORS approval either.
    const preflight = await fetch(`${base}/runs`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.status).toBeGreaterThanOrEqual(400);
  });

  it('answers 401 as JSON to no token and to an unknown one', async () => {
    expect(await call('GET', '/runs')).toMatchObject({ status: 401, body: { error: expect.any(String) as string } });
    expect(await call('GET', '/runs', { authorization: `Bearer ${stranger}` })).toMatchObject({
      status: 401,
      body: { error: 'unknown token' },
    });
  });

  it('lets a read token read, and refuses it every control with 403', async () => {
    expect((await call('GET', '/runs', json(bob))).status).toBe(200);
    for (const route of ['/runs', '/runs/ctl-1/pause', '/runs/ctl-1/resume', '/runs/ctl-1/cancel']) {
      const r = await call('POST', route, json(bob), route === '/runs' ? request('ro-1') : '{}');
      expect(r, route).toMatchObject({
        status: 403,
        body: { error: 'token bob has the read role; this needs operate' },
      });
    }
  });

  it("accepts an operate token, and records the token's name as requestedBy", async () => {
    const r = await call('POST', '/runs', json(alice), request('auth-ok-1'));
    expect(r).toMatchObject({ status: 202, body: { runId: 'auth-ok-1', published: true } });
    // Health and metrics stay open for probes and scrapers.
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it('never writes a token to its logs', async () => {
    await call('GET', '/runs', { authorization: `Bearer ${stranger}` });
    const logs = reporter.output.join('\n');
    for (const token of [alice, bob, stranger]) expect(logs).not.toContain(token);
  });
});

describe('SLUICE_API_AUTH=off', () => {
  it('is explicit, and the reporter warns about it loudly', async () => {
    const nats = await startNatsServer();
    const reporter = await startService('reporter', { NATS_URL: nats.url, SLUICE_API_AUTH: 'off' });
    try {
      const warning = await reporter.waitForLog(
        (l) => l.level === 'warn' && String(l.msg).includes('SLUICE_API_AUTH=off'),
      );
      expect(warning.msg).toMatch(/accepts anyone/);
      const ready = await reporter.waitForLog((l) => l.msg === 'reporter ready');
      const res = await fetch(`http://127.0.0.1:${String(ready.httpPort)}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ runId: 'off-1', target: 'latest' }),
      });
      expect(res.status).toBe(415);
    } finally {
      await reporter.stop();
      await nats.dispose();
    }
  });

  it('without tokens and without off, the reporter does not start, and says what to set', async () => {
    const nats = await startNatsServer();
    try {
      const reporter = await startService(
        'reporter',
        { NATS_URL: nats.url, SLUICE_API_TOKENS: '' },
        { waitReady: false },
      );
      expect(await reporter.exited).toBe(1);
      expect(reporter.output.join('\n')).toMatch(/the HTTP API needs tokens: set SLUICE_API_TOKENS/);
    } finally {
      await nats.dispose();
    }
  });
});
