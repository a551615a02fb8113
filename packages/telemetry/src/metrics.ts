import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** A Prometheus registry with the process metrics (CPU, memory, event loop lag) already in it. */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  // The event-loop lag histogram samples every 100 ms, not prom-client's default 10 ms: a hundred
  // wake-ups a second cost an idle service more CPU than everything else it does while idle
  // (measured: ~200 epoll wake-ups a second, 6 ms of CPU a second per idle service), and ten
  // a second still catch the lateness that matters. The executor samples its own at 100 ms too.
  collectDefaultMetrics({ register: registry, prefix: 'sluice_', eventLoopMonitoringPrecision: 100 });
  return registry;
}

/**
 * Where the planner and the executor serve `/metrics`, `/healthz` and `/readyz` unless
 * `SLUICE_METRICS_PORT` says otherwise (the port OpenTelemetry's Prometheus exporter uses).
 */
export const DEFAULT_METRICS_PORT = 9464;

/** Named readiness checks, each passed or not; ready when all pass. */
export type ReadinessChecks = Record<string, boolean>;

/**
 * Answers `GET /healthz` (the process is alive and serving: always 200) and `GET /readyz` (200
 * when every check passes, else 503; the body names each check). Returns false for other paths.
 * One shape for all three services, so probes and docs name the same thing.
 */
export function serveHealth(
  req: IncomingMessage,
  res: ServerResponse,
  readiness: () => Promise<ReadinessChecks>,
): boolean {
  const path = req.url?.split('?')[0];
  if (req.method !== 'GET' || (path !== '/healthz' && path !== '/readyz')) return false;
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  if (path === '/healthz') {
    send(200, { status: 'ok' });
    return true;
  }
  readiness().then(
    (checks) => {
      const ready = Object.values(checks).every(Boolean);
      send(ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', checks });
    },
    (error: Error) => send(503, { status: 'not ready', error: error.message }),
  );
  return true;
}

/**
 * Serves `GET /metrics` (Prometheus text format), `GET /healthz` and `GET /readyz` (see
 * {@link serveHealth}) on the given port; 0 picks a free one.
 */
export async function startMetricsServer(
  registry: Registry,
  options: { port: number; host: string; readiness: () => Promise<ReadinessChecks> },
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (serveHealth(req, res, options.readiness)) return;
    if (req.method === 'GET' && req.url?.split('?')[0] === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (error: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(error.message);
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found; this server has /metrics, /healthz and /readyz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
