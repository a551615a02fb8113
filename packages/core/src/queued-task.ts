/**
 * What a host consumer's own state says of one task still in the work queue. The work queue keeps
 * a task until it is acknowledged, so a task found there is waiting, being worked on — or held by
 * a consumer that will never deliver it. nats-server has been seen to do the last after node
 * restarts (2.9: a consumer whose leader sat on a stream replica that had stopped catching up
 * reported nothing pending while hundreds of tasks waited; its state had moved past tasks it never
 * delivered; nats-server issues 4189, 4736, 5679). The reporter's reconciler asks this of tasks
 * overdue without an outcome.
 */
export interface ConsumerView {
  /** Highest stream sequence every message at or below which is acknowledged (or given up). */
  ackFloorSeq: number;
  /** Highest stream sequence the consumer has delivered. */
  deliveredSeq: number;
  /** Messages on its subject not yet delivered, as the consumer counts them. */
  numPending: number;
}

/**
 * - `waiting`: the consumer will deliver it, or has and it is being worked on.
 * - `stranded`: at or below the ack floor yet still in the queue: the consumer counts it done and
 *   will never deliver it. Publish it again (above the floor) and remove this copy.
 * - `leaderBehind`: beyond what the consumer delivered, yet it counts nothing pending: its leader
 *   does not see the stream's messages. Step the consumer's leader down; another replica takes over.
 */
export type QueuedTaskVerdict = 'waiting' | 'stranded' | 'leaderBehind';

export function queuedTaskVerdict(taskSeq: number, consumer: ConsumerView): QueuedTaskVerdict {
  if (taskSeq <= consumer.ackFloorSeq) return 'stranded';
  if (taskSeq > consumer.deliveredSeq && consumer.numPending === 0) return 'leaderBehind';
  return 'waiting';
}
