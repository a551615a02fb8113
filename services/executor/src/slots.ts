/**
 * A counting semaphore with first-come, first-served waiters: the executor's global concurrency,
 * shared by the per-host lanes. Slots are granted to a waiter when it is woken, so a slot is never
 * promised twice.
 */
export class Slots {
  private used = 0;
  private readonly waiters: Array<{ max: number; resolve: (granted: number) => void }> = [];

  constructor(readonly size: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Waits for a free slot, then takes as many as are free, up to `max`. Resolves 0 on shutdown. */
  acquireUpTo(max: number): Promise<number> {
    if (this.used < this.size && this.waiters.length === 0) {
      const granted = Math.min(max, this.size - this.used);
      this.used += granted;
      return Promise.resolve(granted);
    }
    return new Promise((resolve) => this.waiters.push({ max, resolve }));
  }

  release(n = 1): void {
    this.used = Math.max(0, this.used - n);
    while (this.waiters.length > 0 && this.used < this.size) {
      const waiter = this.waiters.shift()!;
      const granted = Math.min(waiter.max, this.size - this.used);
      this.used += granted;
      waiter.resolve(granted);
    }
  }

  /** Resolves every waiter with 0 (shutdown). */
  releaseWaiters(): void {
    for (const waiter of this.waiters.splice(0)) waiter.resolve(0);
  }
}
