import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { createLogger, resolveLogFormat } from '../src/logger.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { lines, destination };
}

describe('createLogger', () => {
  it('writes JSON lines with the service, an ISO time and a level label', () => {
    const { lines, destination } = capture();
    createLogger({ service: 'planner', destination }).info({ runId: 'r1' }, 'hello');
    expect(lines[0]).toMatchObject({ service: 'planner', level: 'info', runId: 'r1', msg: 'hello' });
    expect(String(lines[0]?.time)).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('redacts secrets wherever they sit in a log object', () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 'x', destination });
    log.info(
      { password: 'p1', conn: { password: 'p2', user: 'u' }, nats: { token: 't1', pass: 'p3' }, PGPASSWORD: 'p4' },
      'connect',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['p1', 'p2', 't1', 'p3', 'p4']) expect(text).not.toContain(`"${secret}"`);
    expect(lines[0]).toMatchObject({ conn: { user: 'u', password: '[redacted]' } });
  });

  it("redacts the reporter API's tokens and Authorization headers", () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 'x', destination });
    log.info(
      {
        SLUICE_API_TOKENS: 'a:operate:tok-1-secret',
        req: { headers: { authorization: 'Bearer tok-2-secret' } },
        env: { SLUICE_API_TOKENS: 'tok-3-secret' },
      },
      'request',
    );
    const text = JSON.stringify(lines);
    for (const secret of ['tok-1-secret', 'tok-2-secret', 'tok-3-secret']) expect(text).not.toContain(secret);
  });

  it('honours the level', () => {
    const { lines, destination } = capture();
    const log = createLogger({ service: 'x', level: 'warn', destination });
    log.info('quiet');
    log.warn('loud');
    expect(lines.map((l) => l.msg)).toEqual(['loud']);
  });
});

describe('log format', () => {
  it('is LOG_FORMAT when set, else pretty only on a terminal outside production', () => {
    expect(resolveLogFormat({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(resolveLogFormat({ LOG_FORMAT: 'Pretty' }, false)).toBe('pretty');
    expect(resolveLogFormat({}, true)).toBe('pretty');
    expect(resolveLogFormat({ NODE_ENV: 'production' }, true)).toBe('json');
    expect(resolveLogFormat({}, false)).toBe('json');
    expect(() => resolveLogFormat({ LOG_FORMAT: 'xml' }, false)).toThrow(/LOG_FORMAT/);
  });

  it('pretty output is for people (not JSON) and still redacts', () => {
    const chunks: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    createLogger({ service: 'planner', format: 'pretty', destination }).info(
      { runId: 'r1', conn: { password: 'p9' } },
      'planning run',
    );
    const text = chunks.join('');
    expect(text).toContain('planning run');
    expect(text).toContain('r1');
    expect(text).not.toContain('p9');
    expect(() => JSON.parse(text) as unknown).toThrow();
  });
});
