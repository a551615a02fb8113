import {
  type Bus,
  busReadiness,
  connectBus,
  followFrom,
  followStream,
  lastSequence,
  type LiveFollower,
  openFleetStore,
  openRunControlStore,
  publishOnce,
  readSubject,
  type RunControlStore,
  startTopologyKeeper,
  type StreamFollower,
} from '@sluice/bus';
import {
  ALL_LEDGER_ENTRIES,
  ALL_OUTCOMES,
  LEDGER_STREAM,
  ledgerSubject,
  outcomeSubject,
  recoverCommand,
  runEventMsgId,
  runEventSubject,
  type RunLostEvent,
  STREAMS,
} from '@sluice/contracts';
import { createMetricsRegistry, type Logger } from '@sluice/telemetry';

import type { ReporterConfig } from './config.js';
import { followDeadTasks } from './dead-tasks.js';
import { createFleetWriter, type FleetWriter } from './fleet-writer.js';
import { startHttpApi } from './http-api.js';
import { startQueueSampler } from './queue-sampler.js';
import { createReporter, type Reporter } from './reporter.js';
import { activeRuns, registerReporterMetrics } from './reporter-metrics.js';
import { RunBook, type RunState, runStatusOf } from './run-book.js';

export interface ReporterService {
  httpPort: number;
  /** What the start cost: time to ready, unfinished runs, outcomes and ledger entries replayed. */
  startup: { ms: number; runs: number; unfinished: number; outcomes: number; ledgerEntries: number };
  stop(): Promise<void>;
}

/** Runs replayed at once at start. */
const REPLAY_CONCURRENCY = 8;

/** The reporter's reading of the streams: rebuilt from sequence 1 when the JetStream store was reset. */
interface Pipeline {
  reporter: Reporter;
  startup: { runs: number; unfinished: number; outcomes: number; ledgerEntries: number };
  stop(): Promise<void>;
}

interface PipelineDeps {
  bus: Bus;
  logger: Logger;
  config: ReporterConfig;
  controls: RunControlStore;
  book: RunBook;
  fleet: FleetWriter;
  lostRuns: Map<string, RunLostEvent>;
}

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
  const keeper = await startTopologyKeeper(bus, {
    replicas: config.streamReplicas,
    ...config.streamLimits,
    logger,
    ...(config.bus.topologyCheckMs !== undefined ? { intervalMs: config.bus.topologyCheckMs } : {}),
  });
  const controls = await openRunControlStore(bus, { replicas: config.streamReplicas });
  const book = new RunBook();
  const fleetStore = await openFleetStore(bus, { replicas: config.streamReplicas });
  const fleet = createFleetWriter({ store: fleetStore, logger, options: { lingerMs: config.fleetLingerMs } });
  const lostRuns = new Map<string, RunLostEvent>();
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
      lostRuns,
    },
    { port: config.httpPort, host: config.httpHost },
  );

  const deps: PipelineDeps = { bus, logger, config, controls, book, fleet, lostRuns };
  let pipeline = await startPipeline(deps);
  ready = true;
  // The store was reset: what the book holds was folded from streams that are gone, and the live
  // followers would resume at sequences the new streams have not reached. Read them anew from the
  // start, after telling whoever follows the runs in flight that they were lost.
  keeper.onRecovered(async (recovery) => {
    if (!recovery.runsLost) return [];
    ready = false;
    await pipeline.stop();
    const inFlight = book.clear().filter((run) => run.accepted && !run.completed);
    for (const run of inFlight) {
      const event = lostEventOf(run, config.bus.name);
      lostRuns.set(run.runId, event);
      await announceLost(bus, logger, event);
    }
    pipeline = await startPipeline(deps);
    ready = true;
    return ['run followers from the new streams', ...inFlight.map((run) => `run ${run.runId} reported lost`)];
  });

  const progress = setInterval(() => {
    pipeline.reporter
      .publishProgress()
      .catch((error: unknown) => logger.warn({ err: error }, 'progress publish failed'));
  }, config.progressIntervalMs);
  let sweeping = false;
  const sweep = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    pipeline.reporter
      .reconcile()
      .catch((error: unknown) => logger.warn({ err: error }, 'reconciliation sweep failed'))
      .finally(() => (sweeping = false));
  }, config.reconcileIntervalMs);
  const startup = { ms: Math.round(performance.now() - started), ...pipeline.startup };
  logger.info({ httpPort: http.port, startup }, 'reporter ready');
  return {
    httpPort: http.port,
    startup,
    async stop() {
      await keeper.stop();
      clearInterval(progress);
      clearInterval(sweep);
      await sampler.stop();
      http.server.close();
      await pipeline.stop();
      await pipeline.reporter.idle();
      await bus.close();
    },
  };
}

/**
 * Replays the run events, then the outcomes and ledger of unfinished runs, then follows all three
 * (and the dead-task advisories) live from the sequences noted before the replay.
 */
async function startPipeline(deps: PipelineDeps): Promise<Pipeline> {
  const { bus, logger, config, controls, book, fleet, lostRuns } = deps;
  const runsFrom = (await lastSequence(bus.jsm, STREAMS.runs.name)) + 1;
  const reporter = createReporter({
    bus,
    logger,
    controls,
    book,
    fleet,
    lostRuns,
    options: {
      reconcileAfterMs: config.reconcileAfterMs,
      progressIntervalMs: config.progressIntervalMs,
      rejectControlsFrom: runsFrom,
    },
  });
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
    runs,
    await followFrom(bus, STREAMS.outcomes.name, ALL_OUTCOMES, outcomesFrom, logger, (m) => reporter.onOutcome(m)),
    await followFrom(bus, LEDGER_STREAM.name, ALL_LEDGER_ENTRIES, ledgerFrom, logger, (m) => reporter.onLedger(m)),
  ];
  await reporter.goLive();
  // After the replay: a dead task's tenant is failed only against the run's known state.
  followers.push(await followDeadTasks({ bus, logger, book }));
  return {
    reporter,
    startup: { runs: book.list().length, unfinished: unfinished.length, outcomes, ledgerEntries: entries },
    async stop() {
      // A follower whose stream vanished may be retrying its consumer: not waited for long.
      const stopped = Promise.all(followers.map((f) => f.stop().catch(() => undefined)));
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
    },
  };
}

/** The `lost` event of a run that was in flight when the store went: what this reporter had counted. */
function lostEventOf(run: RunState, by: string): RunLostEvent {
  return {
    runId: run.runId,
    reason: 'store_lost',
    lastKnown: {
      status: runStatusOf(run),
      total: run.planned?.total ?? null,
      settled: run.aggregate.done,
      ...(run.accepted ? { targetVersion: run.accepted.targetVersion, acceptedAt: run.accepted.acceptedAt } : {}),
    },
    recover: recoverCommand(run.runId),
    detectedAt: new Date().toISOString(),
    by,
  };
}

/**
 * Publishes the run's `lost` event (once per run, whichever reporter replica notices first) and
 * says in the log what the operator does about it.
 */
async function announceLost(bus: Bus, logger: Logger, event: RunLostEvent): Promise<void> {
  const { runId } = event;
  const { published } = await publishOnce(bus, runEventSubject(runId, 'lost'), event, {
    msgId: runEventMsgId(runId, 'lost'),
  });
  logger.error(
    { runId, lastKnown: event.lastKnown, recover: event.recover, published },
    `run ${runId} was lost with the JetStream store (${event.lastKnown.settled} of ${event.lastKnown.total ?? '?'} tenants had settled); its tasks and events are gone, the tenant journals hold what was applied: ${event.recover} publishes its completed event from them`,
  );
}
