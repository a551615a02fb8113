import { describe, expect, it } from 'vitest';

import { queuedTaskVerdict } from '../src/queued-task.js';

describe('queuedTaskVerdict', () => {
  const consumer = { ackFloorSeq: 100, deliveredSeq: 120, numPending: 5 };

  it('a task the consumer will deliver, or has delivered and not yet seen acknowledged, is waiting', () => {
    expect(queuedTaskVerdict(110, consumer)).toBe('waiting');
    expect(queuedTaskVerdict(120, consumer)).toBe('waiting');
    expect(queuedTaskVerdict(130, consumer)).toBe('waiting');
  });

  it('a task at or below the ack floor that is still queued is stranded: nothing will deliver it', () => {
    expect(queuedTaskVerdict(100, consumer)).toBe('stranded');
    expect(queuedTaskVerdict(4, consumer)).toBe('stranded');
  });

  it('a task beyond what was delivered while the consumer counts nothing pending: its leader is behind', () => {
    // Seen with nats-server 2.9.10: delivered 4224, 0 pending, tasks queued at 4225..4603.
    expect(queuedTaskVerdict(4300, { ackFloorSeq: 4224, deliveredSeq: 4224, numPending: 0 })).toBe('leaderBehind');
    // Delivered and in flight with nothing else pending is normal.
    expect(queuedTaskVerdict(4224, { ackFloorSeq: 4220, deliveredSeq: 4224, numPending: 0 })).toBe('waiting');
  });
});
