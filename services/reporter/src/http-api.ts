import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Bus, FleetStore } from '@sluice/bus';
import {
  controlRefusal,
  ControlRequestSchema,
  MigrateRequestSchema,
  REQUEST_SUBJECT,
  requestMsgId,
  runEventSubject,
  type RunLostEvent,
  TENANT_STATUSES,
  type TenantStatus,
  USER_CONTROL_ACTIONS,
  type UserControlAction,
} from '@sluice/contracts';
import { serveHealth } from '@sluice/telemetry';

import { allows, type ApiAuth, type ApiRole, type Caller, callerOf } from './api-auth.js';
import { fleetOverview, fleetTenants, parseFleetQuery } from './fleet-views.js';
import type { RunBook } from './run-book.js';
import { type RunState, runStatusOf } from './run-state.js';
import {
  type LostRunSummary,
  lostRunSummary,
  type RunSummary,
  runSummary,
  settledTenants,
  unsettledTenants,
} from './run-views.js';

export interface HttpApiDeps {
  book: RunBook;
  /** Publishes requests and controls, reads outcomes. */
  bus: Bus;
  /** False while the reporter replays its streams. */
  ready: () => boolean;
  /** The connection and stream checks of `/readyz` (the replay is added here). */
  busReadiness: () => Promise<Record<string, boolean>>;
  /** Bearer tokens and their roles; `{ mode: 'off' }` only when `SLUICE_API_AUTH=off`. */
  auth: ApiAuth;
  /** Served on `GET /metrics` in the Prometheus text format. */
  metrics?: { metrics(): Promise<string>; contentType: string };
  /** The fleet state behind `GET /fleet` and `GET /fleet/tenants` (absent: those routes answer 404). */
  fleet?: FleetStore;
  /**
   * Runs lost with the JetStream store and not recovered nor requested again (the book no longer
   * holds them): `GET /runs` and `GET /runs/:id` show them as `lost`.
   */
  lostRuns?: ReadonlyMap<string, RunLostEvent>;
  now?: () => number;
}

/** Largest request body accepted (a request may list 10 000 tenant ids). */
const MAX_BODY = 4 * 1024 * 1024;
const DEFAULT_LIMIT = 1_000;
const MAX_LIMIT = 100_000;
const RUN_ID = '([A-Za-z0-9_-]{1,64})';

/** An answer other than 2xx, with its status: every error is `{ error, ...details }` JSON. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function issuesOf(error: { issues: Array<{ path: PropertyKey[]; message: string }> }): string[] {
  return error.issues
    .slice(0, 20)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : 'body'}: ${i.message}`);
}

async function readJson(req: IncomingMessage, required: boolean): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, `request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') {
    if (required) throw new HttpError(400, 'request body is empty; send JSON');
    return {};
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new HttpError(400, `request body is not JSON: ${(error as Error).message}`);
  }
}

/** Routes anyone may call: probes and the Prometheus scrape. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Who is calling and whether they may: 401 without a known token, 403 when the token's role does
 * not cover the route (a POST needs `operate`), 415 for a POST that is not `application/json` —
 * which is also what refuses a browser's cross-site form or `text/plain` request, since those are
 * the only POSTs a page can send without a preflight (and no CORS header is ever sent).
 */
function authorize(req: IncomingMessage, auth: ApiAuth): Caller {
  const caller = callerOf(auth, req.headers.authorization);
  if (!caller)
    throw new HttpError(
      401,
      req.headers.authorization
        ? 'unknown token'
        : 'authentication required: send Authorization: Bearer TOKEN (a token from SLUICE_API_TOKENS)',
    );
  const needs: ApiRole = req.method === 'GET' || req.method === 'HEAD' ? 'read' : 'operate';
  if (!allows(caller, needs))
    throw new HttpError(403, `token ${caller.name ?? ''} has the ${caller.role} role; this needs ${needs}`);
  if (req.method === 'POST') {
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json')
      throw new HttpError(415, `send the body as Content-Type: application/json, got ${type || 'none'}`);
  }
  return caller;
}

function parseLimit(value: string | null): number {
  if (value === null) return DEFAULT_LIMIT;
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_LIMIT)
    throw new HttpError(400, `limit must be a whole number from 1 to ${MAX_LIMIT}`);
  return Number(value);
}

/**
 * The reporter's HTTP API (JSON in and out, but `GET /metrics` in the Prometheus text format):
 * `GET /healthz`, `GET /readyz`, `GET /runs[?status=S&limit=N]`, `GET /runs/:id`,
 * `GET /runs/:id/tenants[?status=failed|…|unsettled&limit=N]`, `POST /runs` (validates a migration
 * request and publishes it), `POST /runs/:id/pause|resume|cancel` (publishes a control event),
 * `GET /fleet[?target=V]` and `GET /fleet/tenants[?host=&tag=k=v&status=&target=&cursor=&limit=]`.
 */
export function createHttpHandler(deps: HttpApiDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { book, bus } = deps;
  const now = deps.now ?? Date.now;

  const lostRuns: ReadonlyMap<string, RunLostEvent> = deps.lostRuns ?? new Map();
  const inBook = (run: RunState | undefined): run is RunState =>
    run !== undefined && Boolean(run.accepted || run.planned || run.completed);

  /** A run of the book; a lost run has nothing to list or control (409, naming the recover command). */
  const knownRun = (runId: string): RunState => {
    const run = book.get(runId);
    if (inBook(run)) return run;
    const lost = lostRuns.get(runId);
    if (lost)
      throw new HttpError(
        409,
        `run ${runId} was lost with the JetStream store: its tasks, outcomes and events are gone; ${lost.recover} publishes its completed event from the tenant journals`,
        { status: 'lost', recover: lost.recover },
      );
    throw new HttpError(404, `no run ${runId}`);
  };

  /** One run as `GET /runs/:id` shows it: from the book, or as lost. */
  const runView = (runId: string): RunSummary | LostRunSummary => {
    const run = book.get(runId);
    if (inBook(run)) return runSummary(run, now());
    const lost = lostRuns.get(runId);
    if (lost) return lostRunSummary(lost);
    throw new HttpError(404, `no run ${runId}`);
  };

  const allow = (req: IncomingMessage, methods: string[]): void => {
    if (!methods.includes(req.method ?? ''))
      throw new HttpError(405, `method ${req.method ?? ''} not allowed here; use ${methods.join(' or ')}`, {
        allow: methods,
      });
  };

  async function route(req: IncomingMessage, url: URL): Promise<[number, unknown]> {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (OPEN_PATHS.has(path)) allow(req, ['GET']);
    const caller = authorize(req, deps.auth);
    if (path === '/runs') {
      allow(req, ['GET', 'POST']);
      return req.method === 'POST' ? submitRun(req, caller) : listRuns(url);
    }
    let match = new RegExp(`^/runs/${RUN_ID}$`).exec(path);
    if (match) {
      allow(req, ['GET']);
      return [200, runView(match[1]!)];
    }
    match = new RegExp(`^/runs/${RUN_ID}/tenants$`).exec(path);
    if (match) {
      allow(req, ['GET']);
      return listTenants(knownRun(match[1]!), url);
    }
    match = new RegExp(`^/runs/${RUN_ID}/(pause|resume|cancel)$`).exec(path);
    if (match) {
      allow(req, ['POST']);
      return control(req, knownRun(match[1]!), match[2] as UserControlAction, caller);
    }
    if ((path === '/fleet' || path === '/fleet/tenants') && deps.fleet) {
      allow(req, ['GET']);
      return fleetRoute(deps.fleet, path, url);
    }
    if (path.startsWith('/runs/'))
      throw new HttpError(
        404,
        `no route ${path}; a runId is 1-64 characters of A-Z, a-z, 0-9, "_" or "-", and a control one of ${USER_CONTROL_ACTIONS.join(', ')}`,
      );
    throw new HttpError(404, `no route ${path}`);
  }

  function listRuns(url: URL): [number, unknown] {
    const status = url.searchParams.get('status');
    const limit = parseLimit(url.searchParams.get('limit'));
    const known = book.list().filter(inBook);
    const listed = [
      ...known.filter((r) => !status || runStatusOf(r) === status).map((r) => runSummary(r, now())),
      ...(!status || status === 'lost'
        ? [...lostRuns.values()].filter((l) => !inBook(book.get(l.runId))).map(lostRunSummary)
        : []),
    ];
    const runs = listed.sort((a, b) => (b.acceptedAt ?? '').localeCompare(a.acceptedAt ?? '')).slice(0, limit);
    return [200, { runs }];
  }

  async function listTenants(run: RunState, url: URL): Promise<[number, unknown]> {
    const status = url.searchParams.get('status') ?? undefined;
    const limit = parseLimit(url.searchParams.get('limit'));
    if (status !== undefined && status !== 'unsettled' && !(TENANT_STATUSES as readonly string[]).includes(status)) {
      throw new HttpError(400, `status must be one of ${[...TENANT_STATUSES, 'unsettled'].join(', ')}`);
    }
    const rows =
      status === 'unsettled'
        ? unsettledTenants(run)
        : await settledTenants(bus, run.runId, status as TenantStatus | undefined);
    return [
      200,
      {
        runId: run.runId,
        status: status ?? null,
        count: rows.length,
        truncated: rows.length > limit,
        tenants: rows.slice(0, limit),
      },
    ];
  }

  /** `GET /fleet` (the summary) and `GET /fleet/tenants` (a page): they read the fleet state, never a database. */
  async function fleetRoute(fleet: FleetStore, path: string, url: URL): Promise<[number, unknown]> {
    const query = parseFleetQuery(url.searchParams);
    if ('problem' in query) throw new HttpError(400, query.problem);
    if (path === '/fleet') return [200, await fleetOverview(fleet, query)];
    const page = fleetTenants(fleet, query, url.searchParams);
    if ('problem' in page) throw new HttpError(400, page.problem);
    return [200, await page];
  }

  async function submitRun(req: IncomingMessage, caller: Caller): Promise<[number, unknown]> {
    const parsed = MigrateRequestSchema.safeParse(await readJson(req, true));
    if (!parsed.success) throw new HttpError(400, 'invalid migration request', { issues: issuesOf(parsed.error) });
    const runId = parsed.data.runId;
    const existing = book.get(runId);
    if (existing?.accepted)
      throw new HttpError(409, `runId ${runId} is taken (run ${runStatusOf(existing)}); use a new runId`, {
        run: `/runs/${runId}`,
      });
    // The planner validates it again, against its migration set. Who asked is the token's name,
    // whatever the body says (without auth, the body's word is all there is).
    const request = caller.name ? { ...parsed.data, requestedBy: caller.name } : parsed.data;
    const ack = await bus.publish(REQUEST_SUBJECT, request, { msgId: requestMsgId(runId) });
    return [202, { runId, published: true, duplicate: ack.duplicate, run: `/runs/${runId}` }];
  }

  async function control(
    req: IncomingMessage,
    run: RunState,
    action: UserControlAction,
    caller: Caller,
  ): Promise<[number, unknown]> {
    const body = ControlRequestSchema.safeParse(await readJson(req, false));
    if (!body.success) throw new HttpError(400, 'invalid control body', { issues: issuesOf(body.error) });
    const refusal = controlRefusal(run.control, action);
    if (refusal) throw new HttpError(409, refusal, { status: runStatusOf(run) });
    const event = {
      runId: run.runId,
      action,
      ...body.data,
      ...(caller.name ? { requestedBy: caller.name } : {}),
      at: new Date(now()).toISOString(),
    };
    await bus.publish(runEventSubject(run.runId, 'control'), event, { msgId: `${run.runId}:control:${randomUUID()}` });
    return [202, { runId: run.runId, action, accepted: true, status: runStatusOf(run) }];
  }

  return (req, res) => {
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      // `GET //` or `GET //[` is a valid request line but no URL: thrown here it would stop the process.
      send(400, { error: `malformed request path ${JSON.stringify((req.url ?? '').slice(0, 200))}` });
      return;
    }
    // Probes: /healthz (alive), /readyz (connected, streams present, replay done), open to all.
    if (serveHealth(req, res, async () => ({ ...(await deps.busReadiness()), replayed: deps.ready() }))) return;
    const metrics = deps.metrics;
    if (metrics && url.pathname === '/metrics' && req.method === 'GET') {
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.contentType });
          res.end(text);
        },
        (error: Error) => send(500, { error: `metrics failed: ${error.message}` }),
      );
      return;
    }
    route(req, url).then(
      ([status, body]) => send(status, body),
      (error: unknown) => {
        if (error instanceof HttpError) {
          const allowHeader = error.details.allow as string[] | undefined;
          send(
            error.status,
            { error: error.message, ...error.details },
            allowHeader ? { allow: allowHeader.join(', ') } : {},
          );
        } else {
          send(500, { error: `internal error: ${(error as Error).message}` });
        }
      },
    );
  };
}

/** Starts the HTTP API; `port` 0 picks a free one. */
export async function startHttpApi(
  deps: HttpApiDeps,
  options: { port: number; host: string },
): Promise<{ server: Server; port: number }> {
  const server = createServer(createHttpHandler(deps));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return { server, port: (server.address() as AddressInfo).port };
}
