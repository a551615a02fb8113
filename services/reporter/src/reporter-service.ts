import {
  busReadiness,
  connectBus,
  ensureTopology,
  followFrom,
  followStream,
  lastSequence,
  type LiveFollower,
  openFleetStore,
  openRunControlStore,
  readSubject,
  type StreamFollower,
} from '@sluice/bus';
import {
  ALL_LEDGER_ENTRIES,
  ALL_OUTCOMES,
  LEDGER_STREAM,
  ledgerSubject,
  outcomeSubject,
  STREAMS,
} from '@sluice/contracts';
import { createMetricsRegistry, type Logger } from '@sluice/telemetry';

import type { ReporterConfig } from './config.js';
import { followDeadTasks } from './dead-tasks.js';
import { createFleetWriter } from './fleet-writer.js';
import { startHttpApi } from './http-api.js';
import { startQueueSampler } from './queue-sampler.js';
import { createReporter } from './reporter.js';
import { activeRuns, registerReporterMetrics } from './reporter-metrics.js';
import { RunBook } from './run-book.js';

export interface ReporterService {
  httpPort: number;
  /** What the start cost: time to ready, unfinished runs, outcomes and ledger entries replayed. */
  startup: { ms: number; runs: number; unfinished: number; outcomes: number; ledgerEntries: number };
  stop(): Promise<void>;
}

/** Runs replayed at once at start. */
const REPLAY_CONCURRENCY = 8;

/**
 * Rebuilds the reporter's state, then goes live. What is read at start scales with the work in
 * flight, not with history: the run events (small: a few per run; progress events are skipped
 * undecoded), then only the outcomes and task ledger of runs that have not completed — a finished
 * run's `completed` event already holds its result. Live followers start right after the
 * sequences noted before the replay, so nothing falls between replay and live.
 */
export async function startReporterService(config: ReporterConfig, logger: Logger): Promise<ReporterService> {
  const started = performance.now();
  const bus = await connectBus(config.bus, logger);
  await ensureTopology(bus.jsm, { replicas: config.streamReplicas, ...config.streamLimits });
  const controls = await openRunControlStore(bus, { replicas: config.streamReplicas });
  const book = new RunBook();
  const fleetStore = await openFleetStore(bus, { replicas: config.streamReplicas });
  const fleet = createFleetWriter({ store: fleetStore, logger });
  const runsFrom = (await lastSequence(bus.jsm, STREAMS.runs.name)) + 1;
  const reporter = createReporter({
    bus,
    logger,
    controls,
    book,
    fleet,
    options: {
      reconcileAfterMs: config.reconcileAfterMs,
      progressIntervalMs: config.progressIntervalMs,
      rejectControlsFrom: runsFrom,
    },
  });
  const sampler = startQueueSampler({
    bus,
    logger,
    intervalMs: config.queueSampleIntervalMs,
    active: () => activeRuns(book.list()).length > 0,
  });
  sampler.onSample((sample) => {
    for (const h of sample.hosts) book.onQueueSample(h.host, h);
  });
  const metricsRegistry = createMetricsRegistry('reporter');
  registerReporterMetrics(metricsRegistry, { book, sampler, fleet: fleetStore });
  if (config.apiAuth.mode === 'off')
    logger.warn(
      { apiAuth: 'off' },
      'SLUICE_API_AUTH=off: the HTTP API accepts anyone who can reach it, including requests to migrate every tenant; use it for a local demo only',
    );
  let ready = false;
  const http = await startHttpApi(
    {
      book,
      bus,
      ready: () => ready,
      busReadiness: async () => ({ ...(await busReadiness(bus)) }),
      metrics: metricsRegistry,
      auth: config.apiAuth,
      fleet: fleetStore,
    },
    { port: config.httpPort, host: config.httpHost },
  );

  const outcomesFrom = (await lastSequence(bus.jsm, STREAMS.outcomes.name)) + 1;
  const ledgerFrom = (await lastSequence(bus.jsm, LEDGER_STREAM.name)) + 1;
  const runs = await followStream(bus, STREAMS.runs.name, logger, (msg) => reporter.onRunEvent(msg));
  await runs.caughtUp;
  const unfinished = book.list().filter((r) => !r.completed);
  let outcomes = 0;
  let entries = 0;
  for (let i = 0; i < unfinished.length; i += REPLAY_CONCURRENCY) {
    await Promise.all(
      unfinished.slice(i, i + REPLAY_CONCURRENCY).map(async (run) => {
        outcomes += await readSubject(
          bus,
          STREAMS.outcomes.name,
          outcomeSubject(run.runId),
          (m) => reporter.onOutcome(m),
          { untilSeq: outcomesFrom - 1 },
        );
        entries += await readSubject(bus, LEDGER_STREAM.name, ledgerSubject(run.runId), (m) => reporter.onLedger(m), {
          untilSeq: ledgerFrom - 1,
        });
      }),
    );
  }
  const followers: Array<LiveFollower | StreamFollower> = [
    await followFrom(bus, STREAMS.outcomes.name, ALL_OUTCOMES, outcomesFrom, logger, (m) => reporter.onOutcome(m)),
    await followFrom(bus, LEDGER_STREAM.name, ALL_LEDGER_ENTRIES, ledgerFrom, logger, (m) => reporter.onLedger(m)),
  ];
  await reporter.goLive();
  // After the replay: a dead task's tenant is failed only against the run's known state.
  followers.push(await followDeadTasks({ bus, logger, book }));
  ready = true;

  const progress = setInterval(() => {
    reporter.publishProgress().catch((error: unknown) => logger.warn({ err: error }, 'progress publish failed'));
  }, config.progressIntervalMs);
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    reporter
      .reconcile()
      .catch((error: unknown) => logger.warn({ err: error }, 'reconciliation sweep failed'))
      .finally(() => (sweeping = false));
  }, config.reconcileIntervalMs);
  const startup = {
    ms: Math.round(performance.now() - started),
    runs: book.list().length,
    unfinished: unfinished.length,
    outcomes,
    ledgerEntries: entries,
  };
  logger.info({ httpPort: http.port, startup }, 'reporter ready');
  return {
    httpPort: http.port,
    startup,
    async stop() {
      clearInterval(progress);
      clearInterval(sweep);
      await sampler.stop();
      http.server.close();
      await runs.stop();
      for (const f of followers) await f.stop();
      await reporter.idle();
      await bus.close();
    },
  };
}
