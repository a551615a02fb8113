import { AckPolicy, type ConsumerInfo, DeliverPolicy, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  ADVISORY_STREAM,
  ALL_TASKS,
  hostConsumerName,
  hostKeyOfConsumer,
  maxDeliveriesSubject,
  parseTaskSubject,
  STREAMS,
  taskSubject,
} from '@sluice/contracts';
import type { ConsumerView } from '@sluice/core';

import type { Bus } from './bus.js';
import { decodeJson } from './codec.js';
import { readSubject } from './lifecycle/subject-reader.js';
import { asTopologyMissing } from './topology-keeper.js';

/*
 * One durable pull consumer per database host on the tasks stream (named by `hostConsumerName`).
 * Its `max_ack_pending` is the host's concurrency limit, enforced by the server across every
 * executor replica: however many replicas pull, no more than that many of the host's tasks are
 * unacknowledged at once. One filter subject per consumer, which nats-server 2.9 supports.
 */

export interface HostConsumerState {
  name: string;
  hostKey: string;
  /** Tasks waiting to be delivered (including redeliveries due). */
  pending: number;
  /** Tasks delivered and not yet acknowledged. */
  ackPending: number;
  /** Tasks waiting for a redelivery after a nak. */
  redelivered: number;
  /** The host's limit. */
  maxAckPending: number;
}

/**
 * Creates the host's consumer, or sets its limit when it differs. Safe to call from several
 * planners at once: a concurrent create of the same durable is retried as an update.
 */
export async function ensureHostConsumer(
  jsm: JetStreamManager,
  hostKey: string,
  limit: number,
  ackWaitMs: number,
  maxDeliver = -1,
): Promise<void> {
  const name = hostConsumerName(hostKey);
  const settle = async (config: { max_ack_pending?: number; max_deliver?: number }): Promise<void> => {
    if (config.max_ack_pending !== limit || (config.max_deliver ?? -1) !== maxDeliver) {
      await jsm.consumers.update(STREAMS.tasks.name, name, { max_ack_pending: limit, max_deliver: maxDeliver });
    }
  };
  const existing = await jsm.consumers.info(STREAMS.tasks.name, name).catch(() => undefined);
  if (existing) {
    await settle(existing.config);
    return;
  }
  try {
    await jsm.consumers.add(STREAMS.tasks.name, {
      durable_name: name,
      filter_subject: taskSubject(hostKey),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWaitMs * 1_000_000,
      // Attempts are counted by the executor, which publishes the final outcome itself on its last
      // attempt. The server's bound is for a task whose executor dies every time it handles it
      // (nobody is left to publish that outcome): after `maxDeliver` deliveries it is no longer
      // delivered, stays in the stream for inspection, and a MAX_DELIVERIES advisory (kept in
      // SLUICE_ADVISORIES) tells the reporter to fail the tenant.
      max_deliver: maxDeliver,
      max_ack_pending: limit,
      description: `tasks for database host ${hostKey}`,
    });
  } catch (error) {
    const again = await jsm.consumers.info(STREAMS.tasks.name, name).catch(() => undefined);
    if (!again) throw error;
    await settle(again.config);
  }
}

/** Every host consumer with its queue depth (one paged listing: a page per 256 hosts, busy or idle). */
export async function listHostConsumers(jsm: JetStreamManager): Promise<HostConsumerState[]> {
  const out: HostConsumerState[] = [];
  for await (const info of jsm.consumers.list(STREAMS.tasks.name)) {
    const state = hostConsumerState(info);
    if (state) out.push(state);
  }
  return out;
}

/** One host's consumer and its queue depth, or undefined when the host has no consumer. */
export async function readHostConsumer(jsm: JetStreamManager, hostKey: string): Promise<HostConsumerState | undefined> {
  const info = await hostConsumerInfo(jsm, hostKey);
  return info ? hostConsumerState(info) : undefined;
}

/** The host consumer's info, or undefined when it does not exist. */
function hostConsumerInfo(jsm: JetStreamManager, hostKey: string): Promise<ConsumerInfo | undefined> {
  return jsm.consumers.info(STREAMS.tasks.name, hostConsumerName(hostKey)).catch((error: unknown) => {
    if (asTopologyMissing(error)?.resource === 'consumer') return undefined;
    throw error;
  });
}

/**
 * The hosts whose queue holds tasks — waiting, delivered and not yet acknowledged, or dead (the
 * tasks stream is a work queue: an acknowledged task is gone). One request, whose answer grows
 * with the hosts that have tasks, not with every host there is: what an executor asks each
 * discovery round, so that a thousand idle hosts cost it nothing (listing their consumers cost
 * ~0.1 ms of CPU a host a round, in the executor and in nats-server alike).
 */
export async function hostsWithTasks(jsm: JetStreamManager): Promise<string[]> {
  const info = await jsm.streams.info(STREAMS.tasks.name, { subjects_filter: ALL_TASKS });
  const hosts: string[] = [];
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    const hostKey = parseTaskSubject(subject);
    if (hostKey !== undefined && n > 0) hosts.push(hostKey);
  }
  return hosts;
}

function hostConsumerState(info: ConsumerInfo): HostConsumerState | undefined {
  const hostKey = hostKeyOfConsumer(info.name);
  if (!hostKey) return undefined;
  return {
    name: info.name,
    hostKey,
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    redelivered: info.num_redelivered,
    maxAckPending: info.config.max_ack_pending ?? 0,
  };
}

/**
 * The host consumer's own account of its deliveries (from its leader), or undefined when it does
 * not exist: what the reconciler compares a still-queued task with (`queuedTaskVerdict`).
 */
export async function hostConsumerView(jsm: JetStreamManager, hostKey: string): Promise<ConsumerView | undefined> {
  const info = await hostConsumerInfo(jsm, hostKey);
  if (!info) return undefined;
  return {
    ackFloorSeq: info.ack_floor.stream_seq,
    deliveredSeq: info.delivered.stream_seq,
    numPending: info.num_pending,
  };
}

/**
 * Asks the host consumer's leader to step down, so another replica leads it (JetStream's
 * `CONSUMER.LEADER.STEPDOWN` API; nats.js has no call for it). True when the server did. A
 * consumer of a stream with one replica has no other leader to take over: false.
 */
export async function stepDownHostConsumer(nc: NatsConnection, hostKey: string): Promise<boolean> {
  const reply = await nc.request(
    `$JS.API.CONSUMER.LEADER.STEPDOWN.${STREAMS.tasks.name}.${hostConsumerName(hostKey)}`,
    undefined,
    { timeout: 5_000 },
  );
  const answer = JSON.parse(reply.string()) as { success?: boolean };
  return answer.success === true;
}

/**
 * The stream sequences of the host's tasks that ran out of deliveries (their MAX_DELIVERIES
 * advisories, kept in SLUICE_ADVISORIES). Such a task also sits below its consumer's ack floor
 * and stays in the queue for inspection: it is dead, not stranded, and must not run again.
 */
export async function deadTaskSeqs(bus: Bus, hostKey: string): Promise<Set<number>> {
  const seqs = new Set<number>();
  await readSubject(bus, ADVISORY_STREAM.name, maxDeliveriesSubject(hostConsumerName(hostKey)), (msg) => {
    let advisory: { stream_seq?: unknown };
    try {
      advisory = decodeJson(msg.data) as { stream_seq?: unknown };
    } catch {
      return; // Not an advisory the server wrote: nothing to learn from it.
    }
    if (typeof advisory?.stream_seq === 'number') seqs.add(advisory.stream_seq);
  });
  return seqs;
}
