import { asTopologyMissing, type Bus, type Consumer, decodeJson, DeliverPolicy, FOLLOW_PULL } from '@sluice/bus';
import {
  parseRunEventSubject,
  recoverCommand,
  REJECTED_SUBJECT,
  RejectedEventSchema,
  RunAcceptedEventSchema,
  RunCompletedEventSchema,
  RunControlEventSchema,
  runEventsFilter,
  RunLostEventSchema,
  RunProgressEventSchema,
  STREAMS,
} from '@sluice/contracts';
import { settledCount } from '@sluice/core';

import { EXIT } from './cli-error.js';
import {
  formatCompleted,
  formatControl,
  formatLostRun,
  formatProgress,
  formatVanishedRun,
  type Output,
} from './output.js';

export interface WatchOptions {
  output: Output;
  json: boolean;
  timeoutMs?: number;
  /** How often the watcher looks whether `SLUICE_RUNS` was re-created (the JetStream store lost). Default 1 s. */
  storeCheckMs?: number;
  /**
   * Once the store was lost, how long to wait for a reporter's `lost` event (or a new `accepted`:
   * the runId requested again) before saying the run was lost anyway. Default 15 s.
   */
  lostGraceMs?: number;
}

type Messages = Awaited<ReturnType<Consumer['consume']>>;

/** The stream's creation time: a stream re-created after the store was lost has another one. */
async function runsStreamCreated(bus: Bus): Promise<string | null | undefined> {
  try {
    return (await bus.jsm.streams.info(STREAMS.runs.name)).created;
  } catch (error) {
    // Gone (null) is a verdict; a timeout or a lost connection says nothing (undefined: look again).
    return asTopologyMissing(error)?.resource === 'stream' ? null : undefined;
  }
}

/**
 * Follows a run's events (replayed from the stream, then live) and a rejection of its request,
 * printing progress; `result` resolves with the exit code once the run completes, its request is
 * rejected, or the run is lost with the JetStream store.
 *
 * A lost store is noticed by the creation time of `SLUICE_RUNS` (the topology keeper's test): the
 * followers' cursors point into the old stream, so they are started again on the new one, where
 * the reporter publishes the run's `lost` event. A `lost` event that was in the stream before the
 * watch began is history (the runId lost earlier and requested again now) and is not a verdict.
 */
export async function watchRun(bus: Bus, runId: string, options: WatchOptions): Promise<{ result: Promise<number> }> {
  const { output, json } = options;
  const storeCheckMs = options.storeCheckMs ?? 1_000;
  const lostGraceMs = options.lostGraceMs ?? 15_000;
  const before = await bus.jsm.streams.info(STREAMS.runs.name);
  let created = before.created;
  /** `lost` events up to this sequence predate the watch. */
  let historyUntil = before.state.last_seq;
  const followEvents = async (): Promise<Messages> =>
    (
      await bus.js.consumers.get(STREAMS.runs.name, {
        filter_subjects: runEventsFilter(runId),
        deliver_policy: DeliverPolicy.All,
      })
    ).consume(FOLLOW_PULL);
  const followRejections = async (): Promise<Messages> =>
    (
      await bus.js.consumers.get(STREAMS.runs.name, {
        filter_subjects: REJECTED_SUBJECT,
        deliver_policy: DeliverPolicy.New,
      })
    ).consume(FOLLOW_PULL);
  let events = await followEvents();
  let rejections = await followRejections();
  let drawn = false;
  let bar = '';
  /** A line above the bar: the bar is cleared, the line printed, the bar drawn again. */
  const say = (line: string): void => {
    if (drawn && output.redraw) {
      output.redraw('');
      output.out(line);
      output.redraw(bar);
    } else {
      output.out(line);
    }
  };

  const result = new Promise<number>((resolve) => {
    let finished = false;
    /** Set once SLUICE_RUNS was found gone or re-created; `replaced` once the new stream is followed. */
    let storeLost: { grace: NodeJS.Timeout; requestedAgain: boolean; replaced: boolean } | undefined;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      if (drawn) output.redraw?.('');
      void events.close();
      void rejections.close();
      clearTimeout(timer);
      clearInterval(storeCheck);
      clearTimeout(storeLost?.grace);
      resolve(code);
    };
    const timer = setTimeout(
      () => {
        output.err(`run ${runId} did not complete within the timeout; it goes on (sluice status ${runId})`);
        finish(EXIT.timeout);
      },
      options.timeoutMs ?? 2 ** 31 - 1,
    );

    const lostLines = (lines: string[]): void => {
      if (drawn) output.redraw?.('');
      drawn = false;
      for (const line of lines) output.err(line);
    };

    const readEvents = async (messages: Messages): Promise<void> => {
      for await (const msg of messages) {
        const data = decodeJson(msg.data);
        const event = parseRunEventSubject(msg.subject)?.event;
        if (event === 'progress') {
          const p = RunProgressEventSchema.safeParse(data);
          if (!p.success) continue;
          if (json) output.out(JSON.stringify({ event: 'progress', ...p.data }));
          else if (output.isTTY && output.redraw) {
            bar = formatProgress(p.data, true);
            output.redraw(bar);
            drawn = true;
          } else output.out(formatProgress(p.data, false));
        } else if (event === 'control') {
          const c = RunControlEventSchema.safeParse(data);
          if (!c.success) continue;
          if (json) output.out(JSON.stringify({ event: 'control', ...c.data }));
          else say(formatControl(c.data));
        } else if (event === 'accepted') {
          // In the new store: the runId was requested again, a run like any other to follow.
          if (storeLost && RunAcceptedEventSchema.safeParse(data).success) storeLost.requestedAgain = true;
        } else if (event === 'lost') {
          const l = RunLostEventSchema.safeParse(data);
          if (!l.success || msg.seq <= historyUntil) continue;
          if (json) output.out(JSON.stringify({ event: 'lost', ...l.data }));
          else lostLines(formatLostRun(l.data));
          finish(EXIT.lost);
          return;
        } else if (event === 'completed') {
          const c = RunCompletedEventSchema.safeParse(data);
          if (!c.success) continue;
          if (drawn) {
            // The bar's last state, at the final counts, stays on screen above the report.
            const done = settledCount(c.data.counts);
            output.redraw?.(
              formatProgress(
                {
                  runId,
                  status: c.data.status,
                  counts: c.data.counts,
                  done,
                  ratePerSec: c.data.durationMs > 0 ? (done / c.data.durationMs) * 1000 : 0,
                  etaMs: 0,
                  at: c.data.finishedAt,
                },
                true,
              ),
            );
            output.out('');
            drawn = false;
          }
          if (json) output.out(JSON.stringify({ event: 'completed', ...c.data }));
          else for (const line of formatCompleted(c.data)) output.out(line);
          finish(c.data.status === 'succeeded' ? EXIT.ok : EXIT.runNotSucceeded);
          return;
        }
      }
    };
    const readRejections = async (messages: Messages): Promise<void> => {
      for await (const msg of messages) {
        const r = RejectedEventSchema.safeParse(decodeJson(msg.data));
        if (!r.success || r.data.runId !== runId) continue;
        if (json) output.out(JSON.stringify({ event: 'rejected', ...r.data }));
        else output.err(`request ${runId} rejected:\n${r.data.reasons.map((x) => `  - ${x}`).join('\n')}`);
        finish(EXIT.rejected);
        return;
      }
    };
    void readEvents(events);
    void readRejections(rejections);

    /** No reporter said the run was lost, and nobody requested it again: it is lost all the same. */
    const vanished = (): void => {
      if (storeLost?.requestedAgain) return;
      if (json)
        output.out(JSON.stringify({ event: 'lost', runId, reason: 'store_lost', recover: recoverCommand(runId) }));
      else lostLines(formatVanishedRun(runId));
      finish(EXIT.lost);
    };
    // Looks overlap: one sent as the server died waits out its request timeout (5 s), and the next
    // must not wait for it. Only following the new stream is one at a time.
    let restarting = false;
    const checkStore = async (): Promise<void> => {
      const now = await runsStreamCreated(bus);
      if (finished || now === undefined) return;
      if (now === created) {
        // Still the stream first followed: a "not found" before was no loss (a cluster electing leaders).
        if (storeLost && !storeLost.replaced) {
          clearTimeout(storeLost.grace);
          storeLost = undefined;
        }
        return;
      }
      storeLost ??= { grace: setTimeout(vanished, lostGraceMs), requestedAgain: false, replaced: false };
      if (now === null || restarting) return; // not re-created yet (the services do that), or being followed
      restarting = true;
      try {
        await followNewStream(now);
      } finally {
        restarting = false;
      }
    };
    const followNewStream = async (now: string): Promise<void> => {
      // Read the new stream from its start (a failure here is tried again at the next look).
      await Promise.all([events.close(), rejections.close()]);
      events = await followEvents();
      rejections = await followRejections();
      if (finished) {
        void events.close();
        void rejections.close();
        return;
      }
      created = now;
      historyUntil = 0;
      if (storeLost) storeLost.replaced = true;
      void readEvents(events);
      void readRejections(rejections);
    };
    const storeCheck = setInterval(() => {
      if (finished) return;
      checkStore().catch(() => undefined); // the next look tries again
    }, storeCheckMs);
  });
  return { result };
}
