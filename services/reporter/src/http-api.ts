import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { type RunBook, type RunState,runStatusOf } from './run-book.js';

function summary(run: RunState) {
  return {
    runId: run.runId,
    status: runStatusOf(run),
    target: run.accepted?.target ?? null,
    targetVersion: run.accepted?.targetVersion ?? null,
    dryRun: run.accepted?.dryRun ?? false,
    counts: { ...run.aggregate.counts },
    done: run.aggregate.done,
    acceptedAt: run.accepted?.acceptedAt ?? null,
    completed: run.completed ?? null,
  };
}

/** Read-only status over HTTP: `GET /healthz`, `GET /runs`, `GET /runs/:id`. */
export async function startHttpApi(book: RunBook, options: { port: number; host: string; ready: () => boolean }): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET') return send(405, { error: `method ${req.method ?? ''} not allowed` });
    if (url.pathname === '/healthz') return options.ready() ? send(200, { status: 'ok' }) : send(503, { status: 'replaying' });
    if (url.pathname === '/runs') {
      return send(200, { runs: book.list().map(summary) });
    }
    const match = /^\/runs\/([A-Za-z0-9_-]{1,64})$/.exec(url.pathname);
    if (match) {
      const run = book.get(match[1]!);
      return run ? send(200, summary(run)) : send(404, { error: `no run ${match[1]!}` });
    }
    return send(404, { error: `no route ${url.pathname}` });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
