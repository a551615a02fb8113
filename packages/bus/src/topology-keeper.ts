import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { BUCKETS, LEDGER_STREAM, STREAMS } from '@sluice/contracts';
import type { Logger } from '@sluice/telemetry';

import type { Bus } from './bus.js';
import type { TopologyOptions } from './stream-settings.js';
import { ensureTopology, streamConfigs } from './topology.js';

/**
 * A stream, consumer or bucket Sluice needs was not there: the JetStream store was lost (every
 * node's store deleted, the cluster started empty) or someone deleted it. Transient: the
 * {@link TopologyKeeper} re-creates it and the operation can be tried again.
 */
export class TopologyMissingError extends Error {
  override readonly name = 'TopologyMissingError';
  readonly transient = true;
  constructor(
    message: string,
    /** What was missing, when the server said. */
    readonly resource: 'stream' | 'consumer' | 'unknown',
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * What the server and the client say when a stream or consumer is gone: the API's 10059 (stream
 * not found) and 10014 (consumer not found); a pull or a publish nobody answers (503 no
 * responders: no stream or consumer listens on the subject); a pull consumer deleted under its
 * client (409); a fetch whose heartbeats stopped (the server came back without the consumer).
 * The last three also happen briefly while a cluster elects a leader, so they are suspicions that
 * make the keeper look, never a verdict: only `STREAM.INFO`/`STREAM.LIST` decide.
 */
const GONE = /stream not found|consumer not found|consumer deleted|no responders|heartbeats missed/i;

/** The error as a {@link TopologyMissingError} when it says a stream or consumer is gone; undefined otherwise. */
export function asTopologyMissing(error: unknown): TopologyMissingError | undefined {
  if (error instanceof TopologyMissingError) return error;
  if (!(error instanceof Error)) return undefined;
  if (error instanceof JetStreamApiError) {
    if (error.code === JetStreamApiCodes.StreamNotFound)
      return new TopologyMissingError(error.message, 'stream', { cause: error });
    if (error.code === JetStreamApiCodes.ConsumerNotFound)
      return new TopologyMissingError(error.message, 'consumer', { cause: error });
  }
  if (!GONE.test(error.message)) return undefined;
  const resource = /stream/i.test(error.message) ? 'stream' : /consumer/i.test(error.message) ? 'consumer' : 'unknown';
  return new TopologyMissingError(error.message, resource, { cause: error });
}

/** The KV buckets Sluice keeps (all plain, history 1: what nats-server 2.9 supports). */
const KV_BUCKETS = [BUCKETS.runClaims, BUCKETS.runControl, BUCKETS.fleet, BUCKETS.fleetIndex] as const;

/** Streams whose loss loses runs: requests, run events, tasks, outcomes, the task ledger. */
const RUN_STREAMS = new Set<string>([
  STREAMS.requests.name,
  STREAMS.runs.name,
  STREAMS.tasks.name,
  STREAMS.outcomes.name,
  LEDGER_STREAM.name,
]);

/** Every JetStream stream behind Sluice's topology: its streams, and the streams under its buckets. */
export function topologyStreamNames(): string[] {
  return [...streamConfigs().map((c) => c.name), ...KV_BUCKETS.map((b) => `KV_${b}`), `OBJ_${BUCKETS.bundles}`];
}

/** One recovery: what the keeper found missing or replaced, and what the service put back. */
export interface TopologyRecovery {
  /** What set the check off: `interval`, or where a missing-resource error was met. */
  trigger: string;
  /** Streams (buckets as `KV_…`/`OBJ_…`) that were missing and were created by this service. */
  created: string[];
  /** Streams that exist but are not the ones this service saw before: someone re-created them. */
  replaced: string[];
  /**
   * A stream that carried runs (requests, run events, tasks, outcomes, ledger) was lost: the
   * runs in flight lost their tasks and events. Only the tenant journals know what was applied.
   */
  runsLost: boolean;
}

/** A service's own part of a recovery: re-creates what it owns and says what, for the one log line. */
export type RecoveryStep = (recovery: TopologyRecovery) => Promise<string[] | void>;

export interface TopologyKeeperOptions extends TopologyOptions {
  logger: Logger;
  /** How often the streams are looked at (one `STREAM.LIST`). 0: only when a step meets a missing resource. */
  intervalMs?: number;
}

/**
 * Keeps the JetStream topology a service needs, for as long as it runs: the one rule every
 * service follows when a stream, consumer or bucket is gone (see docs/architecture.md, "When the
 * broker's store is lost").
 */
export interface TopologyKeeper {
  /**
   * Looks now (one at a time: a check asked during another joins it). Re-creates what is missing
   * with the service's settings, then runs every recovery step. Resolves with what was found, or
   * undefined when everything was in place. Rejects when the server cannot be asked.
   */
  check(trigger?: string): Promise<TopologyRecovery | undefined>;
  /**
   * Hands the keeper an error a bus operation met. When it says a stream or consumer is gone, a
   * check starts in the background and the error comes back typed; otherwise undefined.
   */
  suspect(error: unknown, where: string): TopologyMissingError | undefined;
  /** Adds what this service re-creates after the streams (its consumers, its bundle, its followers). */
  onRecovered(step: RecoveryStep): void;
  /** Recoveries completed so far. */
  readonly recoveries: number;
  stop(): Promise<void>;
}

/**
 * Ensures the topology now (the streams with `options`' replicas and — when it states them — limits,
 * the bundle bucket and the KV buckets), then keeps it: every `intervalMs`, and whenever
 * {@link TopologyKeeper.suspect} hears of a missing resource, it lists the streams. A missing one
 * is created; one whose creation time changed was re-created by another service. Either way the
 * service's recovery steps run and one warning says what was re-created. A planner or reporter
 * (limits in `options`) also brings a stream an executor re-created to the configured limits; an
 * executor only creates what is missing.
 */
export async function startTopologyKeeper(bus: Bus, options: TopologyKeeperOptions): Promise<TopologyKeeper> {
  const { logger, intervalMs = 2_000, ...topology } = options;
  const names = topologyStreamNames();
  const steps: RecoveryStep[] = [];
  // Its own manager with a short timeout: the first request after a reconnect can go unanswered
  // while the server's JetStream starts, and is better asked again soon than waited for 5 s.
  const lister = await jetstreamManager(bus.nc, { timeout: 1_500, checkAPI: false });
  let known = await ensureAll(bus, topology);
  let inFlight: Promise<TopologyRecovery | undefined> | undefined;
  /** A recovery whose steps did not all succeed: run again on the next check. */
  let owed: TopologyRecovery | undefined;
  let recoveries = 0;
  let stopped = false;

  async function run(trigger: string): Promise<TopologyRecovery | undefined> {
    const started = performance.now();
    const before = await streamsCreated(lister);
    const missing = names.filter((n) => !before.has(n));
    // A stream re-created by a service that states no limits gets them from a planner or reporter here.
    const drifted = names.filter((n) => known.has(n) && before.has(n) && before.get(n) !== known.get(n));
    const after = missing.length > 0 || drifted.length > 0 ? await ensureAll(bus, topology) : before;
    const created = missing.filter((n) => after.get(n) !== known.get(n));
    const replaced = names.filter((n) => !missing.includes(n) && known.has(n) && after.get(n) !== known.get(n));
    known = after;
    let recovery: TopologyRecovery | undefined =
      created.length > 0 || replaced.length > 0
        ? { trigger, created, replaced, runsLost: [...created, ...replaced].some((n) => RUN_STREAMS.has(n)) }
        : undefined;
    if (owed) recovery = mergeRecoveries(owed, recovery);
    if (!recovery) return undefined;
    const restored: string[] = [];
    const failures: unknown[] = [];
    for (const step of steps) {
      try {
        restored.push(...((await step(recovery)) ?? []));
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) {
      owed = recovery;
      logger.warn(
        { err: failures[0], trigger, created: recovery.created, replaced: recovery.replaced },
        'JetStream topology re-created, but not everything this service owns could be restored yet; trying again',
      );
      throw failures[0];
    }
    owed = undefined;
    recoveries += 1;
    logger.warn(
      {
        topology: {
          trigger: recovery.trigger,
          created: recovery.created,
          replaced: recovery.replaced,
          restored,
          runsLost: recovery.runsLost,
          ms: Math.round(performance.now() - started),
        },
      },
      recovery.runsLost
        ? "JetStream store was reset (streams gone or re-created empty): topology re-created; runs in flight lost their tasks and events (sluice runs recover RUN_ID rebuilds a run's completion from the tenant journals)"
        : 'JetStream topology re-created',
    );
    return recovery;
  }

  function check(trigger = 'check'): Promise<TopologyRecovery | undefined> {
    return (inFlight ??= run(trigger).finally(() => (inFlight = undefined)));
  }

  /**
   * Checks now, and again shortly while the server cannot answer yet (a server that just came
   * back may refuse JetStream requests for a moment), rather than waiting for the interval.
   */
  function checkSoon(trigger: string): void {
    void (async () => {
      for (let attempt = 0, delay = 250; attempt < 8 && !stopped && !bus.nc.isClosed(); attempt++) {
        try {
          await check(trigger);
          return;
        } catch (error) {
          logger.debug({ err: error, trigger }, 'topology check failed; trying again');
          await new Promise((resolve) => setTimeout(resolve, delay).unref());
          delay = Math.min(delay * 2, 2_000);
        }
      }
    })();
  }

  // A reconnect is when a lost store is met first: looked at at once, not at the next interval.
  const statuses = bus.nc.status();
  void (async () => {
    for await (const status of statuses) if (status.type === 'reconnect' && !stopped) checkSoon('reconnect');
  })();

  const timer =
    intervalMs > 0
      ? setInterval(() => {
          if (stopped || inFlight || bus.nc.isClosed()) return;
          // A server that cannot answer now (restarting, no leader) is asked again next time.
          check('interval').catch((error: unknown) => logger.debug({ err: error }, 'topology check failed'));
        }, intervalMs)
      : undefined;
  timer?.unref();

  return {
    check,
    suspect(error, where) {
      const missing = asTopologyMissing(error);
      if (missing && !stopped && !bus.nc.isClosed()) checkSoon(where);
      return missing;
    },
    onRecovered(step) {
      steps.push(step);
    },
    get recoveries() {
      return recoveries;
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      // The status iterator nats.js hands out can be stopped; its type does not say so.
      (statuses as { stop?: () => void }).stop?.();
      await inFlight?.catch(() => undefined);
    },
  };
}

function mergeRecoveries(a: TopologyRecovery, b: TopologyRecovery | undefined): TopologyRecovery {
  if (!b) return a;
  const union = (x: string[], y: string[]) => [...new Set([...x, ...y])];
  return {
    trigger: a.trigger,
    created: union(a.created, b.created),
    replaced: union(a.replaced, b.replaced),
    runsLost: a.runsLost || b.runsLost,
  };
}

/** Creates what is missing (streams, bundle bucket, KV buckets) and returns every stream's creation time. */
async function ensureAll(bus: Bus, topology: TopologyOptions): Promise<Map<string, string>> {
  await ensureTopology(bus.jsm, topology);
  let present = await streamsCreated(bus.jsm);
  const kvm = new Kvm(bus.nc);
  const absent = KV_BUCKETS.filter((b) => !present.has(`KV_${b}`));
  for (const bucket of absent) {
    await kvm.create(bucket, { history: 1, replicas: topology.replicas ?? 1 }).catch(async (error: unknown) => {
      // Another service may have created it in between.
      if (!(await streamsCreated(bus.jsm)).has(`KV_${bucket}`)) throw error;
    });
  }
  if (absent.length > 0) present = await streamsCreated(bus.jsm);
  return present;
}

/** Every stream's creation time by name: a stream deleted and created again has a new one. */
async function streamsCreated(jsm: JetStreamManager): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const info of jsm.streams.list()) out.set(info.config.name, info.created);
  return out;
}
