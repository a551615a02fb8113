import {
  type Bus,
  type ConsumerPull,
  type HostConsumerState,
  hostsWithTasks,
  type JsMsg,
  listHostConsumers,
  openConsumerPull,
  readHostConsumer,
} from '@sluice/bus';
import { STREAMS } from '@sluice/contracts';
import { AimdLimiter, HostUnavailableError, LockTimeoutError } from '@sluice/core';
import type { Logger } from '@sluice/telemetry';

import type { AckBatcher } from './ack-batcher.js';
import type { DeliveryResult } from './delivery.js';
import type { BreakerState, HostBreakers } from './host-breakers.js';
import { Slots } from './slots.js';

export interface HostSchedulerOptions {
  bus: Bus;
  logger: Logger;
  /** The hosts' breakers: a lane waits while its host's is open, and probes with one task while half-open. */
  breakers: Pick<HostBreakers, 'whenPassable' | 'state'>;
  /** Handles one delivery to the end (ack, nak or term); the result feeds the host's limiter. */
  handleTask: (msg: JsMsg) => Promise<DeliveryResult>;
  /** Tenants this replica migrates at once, over all hosts. */
  concurrency: number;
  /** Where each host's adaptive limit starts; undefined: at the host's limit. */
  initialHostLimit?: number | undefined;
  /** How often the hosts' queues are looked at to find hosts with work. */
  discoveryIntervalMs: number;
  /**
   * How often a round lists every host consumer (and at the first round, and the first after a
   * nudge) to follow limits changed on hosts whose lanes keep running; the rounds between ask the
   * tasks stream which hosts hold tasks, and only those hosts' consumers. Default 30 s.
   */
  fullListingIntervalMs?: number;
  /**
   * After `nudge()` (a run was accepted, planned or resumed: tasks are being published), the
   * consumers are listed again after each of these delays, so a run's first tasks start within
   * milliseconds instead of waiting up to a whole `discoveryIntervalMs`. Default 0, 50, 200, 600 ms.
   */
  nudgeDelaysMs?: readonly number[];
  /** Replay lag of a host's replicas above which its limit is cut; 0 or none: never. */
  maxReplayLagMs?: number;
  /** Hears failed pulls and listings (the topology keeper's `suspect`: the stream or a consumer may be gone). */
  onBusError?: (error: unknown) => void;
  /** Acks waiting to go out: sent right after each pull request, in the same socket write. */
  acks?: Pick<AckBatcher, 'flush'>;
  now?: () => number;
}

interface Lane {
  hostKey: string;
  consumerName: string;
  /** The host's consumer was found (looked up again after a failed pull). */
  consumerKnown: boolean;
  /** The lane's pull, kept from task to task while the lane runs (closed when it ends). */
  pull?: ConsumerPull;
  limiter: AimdLimiter;
  inFlight: number;
  running: boolean;
  /** Tasks the server said were waiting: at the last look at the host's consumer, or with the last task pulled. */
  pendingHint: number;
  maxAckPending: number;
  wake: (() => void) | null;
}

export interface HostSnapshot {
  host: string;
  /** This replica's adaptive limit for the host. */
  limit: number;
  /** The host's hard cap across replicas (the consumer's max_ack_pending). */
  maxLimit: number;
  inFlight: number;
  breaker: BreakerState;
  cuts: number;
}

/**
 * What one delivery tells its host's limiter: lock timeouts and refused or broken connections
 * are overload; a clean completion grows the limit, and its journal read (one small query every
 * task makes) is the latency probe — never the whole task, so a slow file or a cold connection
 * cannot cut the limit.
 */
export function feedHostLimiter(limiter: AimdLimiter, result: DeliveryResult, now: number, maxReplayLagMs = 0): void {
  const error = result.error;
  const signals = result.outcome?.signals;
  const lag = signals?.hostActivity?.replayLagMs;
  if (error instanceof LockTimeoutError) limiter.onOverload('lock_timeout', now);
  else if (error instanceof HostUnavailableError)
    limiter.onOverload(error.tooManyConnections ? 'too_many_connections' : 'connection_error', now);
  else if (maxReplayLagMs > 0 && lag !== undefined && lag > maxReplayLagMs) limiter.onOverload('replay_lag', now);
  // The executor's own loop delay tells its own slowness from the host's (a saturated host).
  else if (result.settled === 'done' && error === undefined)
    limiter.onSuccess(result.outcome?.timings?.journalMs, now, signals?.loopDelayMs);
}

/**
 * Schedules tasks per database host. Each host with work gets a lane that pulls from the host's
 * own consumer only as many tasks as (a) this replica has free global slots, (b) the host's
 * adaptive limit allows, and (c) the host's breaker lets through — so a slow, saturated or broken
 * host never holds back another host's tasks. The server caps each host across replicas.
 */
export function startHostScheduler(options: HostSchedulerOptions) {
  const { bus, logger, breakers } = options;
  const now = options.now ?? Date.now;
  const slots = new Slots(options.concurrency);
  const lanes = new Map<string, Lane>();
  const inFlight = new Set<JsMsg>();
  const abort = new AbortController();
  let stopping = false;
  let discovering: Promise<void> = Promise.resolve();
  const nudgeTimers = new Set<NodeJS.Timeout>();

  const fullListingIntervalMs = options.fullListingIntervalMs ?? 30_000;
  let lastFullListing = Number.NEGATIVE_INFINITY;

  /**
   * One round at a time: a nudge's round waits for the loop's, and the other way round. `full`:
   * list every consumer whatever the time since the last full listing (a nudge: a run may have
   * set new limits).
   */
  function discoverSerially(full = false): Promise<void> {
    const next = discovering
      .catch(() => undefined)
      .then(() => (stopping ? undefined : discover(full || now() - lastFullListing >= fullListingIntervalMs)));
    discovering = next;
    return next;
  }

  function feedback(lane: Lane, result: DeliveryResult): void {
    feedHostLimiter(lane.limiter, result, now(), options.maxReplayLagMs);
  }

  function start(lane: Lane, msg: JsMsg): void {
    lane.inFlight += 1;
    inFlight.add(msg);
    options
      .handleTask(msg)
      .then((result) => feedback(lane, result))
      .catch((error: unknown) => {
        logger.error({ err: error, host: lane.hostKey }, 'task handler failed; task put back');
        msg.nak(1_000);
      })
      .finally(() => {
        inFlight.delete(msg);
        lane.inFlight -= 1;
        slots.release(1);
        lane.wake?.();
        lane.wake = null;
      });
  }

  async function runLane(lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (!stopping) {
        await breakers.whenPassable(lane.hostKey, abort.signal);
        if (stopping) break;
        // Half-open: exactly one task probes the host.
        const cap = breakers.state(lane.hostKey) === 'halfOpen' ? 1 : lane.limiter.limit;
        const room = Math.min(cap - lane.inFlight, Math.max(1, lane.pendingHint));
        if (room <= 0) {
          await new Promise<void>((resolve) => (lane.wake = resolve));
          continue;
        }
        const granted = await slots.acquireUpTo(room);
        if (granted === 0 || stopping) {
          slots.release(granted);
          break;
        }
        let got = 0;
        try {
          if (!lane.consumerKnown) {
            // Fails at once when the consumer is gone (the keeper hears of it below); a pull on a
            // missing consumer would only go unanswered.
            await bus.jsm.consumers.info(STREAMS.tasks.name, lane.consumerName);
            lane.consumerKnown = true;
          }
          lane.pull ??= openConsumerPull(bus.nc, STREAMS.tasks.name, lane.consumerName);
          // Exactly the slots granted: a task never waits in a client buffer.
          const pulling = lane.pull.pull(granted, 1_000, (msg) => {
            if (stopping) return msg.nak();
            got += 1;
            // The server's count of the host's tasks still waiting after this one (in its reply subject).
            lane.pendingHint = msg.info.pending;
            start(lane, msg);
          });
          // The request is in the client's buffer: the acks waiting join it in one write.
          options.acks?.flush();
          await pulling;
        } catch (error) {
          closePull(lane);
          // Looked up again next time: the consumer may have been deleted and created anew.
          lane.consumerKnown = false;
          if (!stopping) {
            logger.warn({ err: error, host: lane.hostKey }, 'pull failed');
            options.onBusError?.(error);
          }
        } finally {
          slots.release(granted - got);
        }
        // Nothing came: the host's queue is empty, or other replicas hold its whole limit.
        // The lane ends; the next listing restarts it when there is work.
        if (got === 0) break;
      }
    } finally {
      // An idle host holds no subscription; the next listing that finds work opens a new pull.
      closePull(lane);
      lane.running = false;
    }
  }

  /**
   * One discovery round. A full round lists every host consumer. Other rounds ask which hosts'
   * queues hold tasks (one request, sized by those hosts), then read the consumer of each such
   * host that has no lane running here: a running lane follows its queue from the tasks it pulls,
   * and an idle host costs nothing.
   */
  async function discover(full: boolean): Promise<void> {
    if (full) {
      const hosts = await listHostConsumers(bus.jsm);
      // Only a listing that came back counts: a failed one is tried again next round.
      lastFullListing = now();
      for (const h of hosts) consider(h);
      return;
    }
    const idle = (await hostsWithTasks(bus.jsm)).filter((hostKey) => !lanes.get(hostKey)?.running);
    for (let i = 0; i < idle.length; i += CONSUMER_READS_AT_ONCE) {
      const states = await Promise.all(
        idle.slice(i, i + CONSUMER_READS_AT_ONCE).map((hostKey) => readHostConsumer(bus.jsm, hostKey)),
      );
      for (const h of states) if (h && !stopping) consider(h);
    }
  }

  /** Takes in what a host's consumer says: a lane for a new host, its limit, and a start when it has work. */
  function consider(h: HostConsumerState): void {
    let lane = lanes.get(h.hostKey);
    if (!lane) {
      const max = Math.max(1, h.maxAckPending);
      lane = {
        hostKey: h.hostKey,
        consumerName: h.name,
        consumerKnown: false,
        limiter: new AimdLimiter({ initial: Math.min(options.initialHostLimit ?? max, max), max }),
        inFlight: 0,
        running: false,
        pendingHint: 0,
        maxAckPending: max,
        wake: null,
      };
      lanes.set(h.hostKey, lane);
    } else if (h.maxAckPending !== lane.maxAckPending && h.maxAckPending > 0) {
      lane.maxAckPending = h.maxAckPending;
      lane.limiter.setMax(h.maxAckPending);
    }
    lane.pendingHint = h.pending;
    if ((h.pending > 0 || h.ackPending > lane.inFlight) && !lane.running && !stopping) {
      const l = lane;
      void runLane(l).catch((error: unknown) => logger.error({ err: error, host: l.hostKey }, 'lane failed'));
    }
  }

  const discoveryLoop = (async () => {
    let backoff = 250;
    while (!stopping) {
      try {
        await discoverSerially();
        backoff = 250;
        await sleep(options.discoveryIntervalMs, abort.signal);
      } catch (error) {
        if (stopping) break;
        logger.warn({ err: error }, 'listing host consumers failed; retrying');
        options.onBusError?.(error);
        await sleep(backoff, abort.signal);
        backoff = Math.min(backoff * 2, 5_000);
      }
    }
  })();

  return {
    /**
     * Work is coming (a run was accepted, planned or resumed): list the host consumers now and a
     * few times over the next moments instead of at the next interval. Cheap to call often.
     */
    nudge(): void {
      if (stopping) return;
      for (const [i, delay] of (options.nudgeDelaysMs ?? [0, 50, 200, 600]).entries()) {
        const timer = setTimeout(() => {
          nudgeTimers.delete(timer);
          discoverSerially(i === 0).catch((error: unknown) =>
            logger.warn({ err: error }, 'listing host consumers failed'),
          );
        }, delay);
        timer.unref();
        nudgeTimers.add(timer);
      }
    },
    /** This replica's adaptive limit for a host, when it has a lane for it. */
    limitOf(host: string): number | undefined {
      return lanes.get(host)?.limiter.limit;
    },
    snapshot(): HostSnapshot[] {
      return [...lanes.values()].map((l) => ({
        host: l.hostKey,
        limit: l.limiter.limit,
        maxLimit: l.maxAckPending,
        inFlight: l.inFlight,
        breaker: breakers.state(l.hostKey),
        cuts: l.limiter.cuts,
      }));
    },
    get inFlight(): number {
      return inFlight.size;
    },
    /**
     * Stops pulling, waits up to `graceMs` for in-flight tasks, then puts back what is left
     * (nak: another replica takes it at once). Returns how many were put back.
     */
    async stop(graceMs: number): Promise<number> {
      stopping = true;
      options.acks?.flush();
      abort.abort();
      for (const timer of nudgeTimers) clearTimeout(timer);
      nudgeTimers.clear();
      slots.releaseWaiters();
      for (const lane of lanes.values()) lane.wake?.();
      await discoveryLoop;
      await discovering.catch(() => undefined);
      const deadline = Date.now() + graceMs;
      while (inFlight.size > 0 && Date.now() < deadline) await sleep(50);
      const left = [...inFlight];
      for (const msg of left) msg.nak();
      return left.length;
    },
  };
}

export type HostScheduler = ReturnType<typeof startHostScheduler>;

/** Host consumers read at once by a discovery round (hosts with tasks and no lane running here). */
const CONSUMER_READS_AT_ONCE = 32;

/** Ends a lane's pull and its subscription (after a failed pull, or when the lane stops). */
function closePull(lane: Lane): void {
  lane.pull?.close();
  lane.pull = undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
