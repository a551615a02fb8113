import { type EventLoopUtilization, monitorEventLoopDelay, performance } from 'node:perf_hooks';

/** The replica's own load over its last sampling window. */
export interface ExecutorLoadSample {
  /** CPU (user + system) over the window, as a share of one core: the event loop runs on one. */
  executorCpu: number;
  /** Mean event-loop delay over the window: how late callbacks ran (a busy or starved loop). */
  loopDelayMs: number;
  /**
   * Share of the window the event loop spent running callbacks rather than waiting for I/O (Node's
   * event-loop utilization). A loop saturated by many short callbacks is busy ~100% of the time
   * and yet late by little, so this, not the delay, says the executor had no time to spare.
   */
  loopBusy: number;
}

/**
 * Samples this process's CPU share, event-loop delay and utilization once per window. Cheap enough
 * to leave on: one timer per window and the histogram timer of `monitorEventLoopDelay` (every
 * `resolutionMs`); `current()` reads three numbers. The figures travel in outcomes, so the reporter can tell busy
 * executors from a busy database host.
 */
export class ExecutorLoadMonitor {
  private readonly histogram;
  private readonly timer: NodeJS.Timeout;
  private lastCpu = process.cpuUsage();
  private lastAt = performance.now();
  private lastElu: EventLoopUtilization = performance.eventLoopUtilization();
  private sample: ExecutorLoadSample = { executorCpu: 0, loopDelayMs: 0, loopBusy: 0 };

  constructor(
    windowMs = 1_000,
    // 100 ms: ten wake-ups a second cost ~0.07% of a core (20 ms cost ~0.3%), and a loop late by
    // the tens of ms that matter still shows in the mean.
    private readonly resolutionMs = 100,
  ) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
    this.timer = setInterval(() => this.roll(), windowMs);
    this.timer.unref();
  }

  /** The last full window (zeros before the first one ends). */
  current(): ExecutorLoadSample {
    return this.sample;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private roll(): void {
    const now = performance.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const wallMs = Math.max(1, now - this.lastAt);
    // The histogram counts the timer's lateness over its own resolution; its mean is in ns.
    const mean = this.histogram.count > 0 ? this.histogram.mean / 1e6 : 0;
    // One reading ends this window and starts the next: no time falls between them.
    const elu = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(elu, this.lastElu).utilization;
    this.sample = {
      executorCpu: round((cpu.user + cpu.system) / 1_000 / wallMs),
      loopDelayMs: round(Math.max(0, mean - this.resolutionMs)),
      loopBusy: round(Math.min(1, Math.max(0, busy))),
    };
    this.lastElu = elu;
    this.histogram.reset();
    this.lastCpu = process.cpuUsage();
    this.lastAt = now;
  }
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
