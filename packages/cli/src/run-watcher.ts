import { type Bus, decodeJson, DeliverPolicy, FOLLOW_PULL } from '@sluice/bus';
import {
  parseRunEventSubject,
  REJECTED_SUBJECT,
  RejectedEventSchema,
  RunCompletedEventSchema,
  RunControlEventSchema,
  runEventsFilter,
  RunProgressEventSchema,
  STREAMS,
} from '@sluice/contracts';
import { settledCount } from '@sluice/core';

import { EXIT } from './cli-error.js';
import { formatCompleted, formatControl, formatProgress, type Output } from './output.js';

export interface WatchOptions {
  output: Output;
  json: boolean;
  timeoutMs?: number;
}

/**
 * Follows a run's events (replayed from the stream, then live) and a rejection of its request,
 * printing progress; `result` resolves with the exit code once the run completes.
 */
export async function watchRun(bus: Bus, runId: string, options: WatchOptions): Promise<{ result: Promise<number> }> {
  const { output, json } = options;
  const events = await (
    await bus.js.consumers.get(STREAMS.runs.name, {
      filter_subjects: runEventsFilter(runId),
      deliver_policy: DeliverPolicy.All,
    })
  ).consume(FOLLOW_PULL);
  const rejections = await (
    await bus.js.consumers.get(STREAMS.runs.name, {
      filter_subjects: REJECTED_SUBJECT,
      deliver_policy: DeliverPolicy.New,
    })
  ).consume(FOLLOW_PULL);
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
    const finish = (code: number): void => {
      if (drawn) output.redraw?.('');
      void events.close();
      void rejections.close();
      clearTimeout(timer);
      resolve(code);
    };
    const timer = setTimeout(
      () => {
        output.err(`run ${runId} did not complete within the timeout; it goes on (sluice status ${runId})`);
        finish(EXIT.timeout);
      },
      options.timeoutMs ?? 2 ** 31 - 1,
    );

    void (async () => {
      for await (const msg of events) {
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
    })();
    void (async () => {
      for await (const msg of rejections) {
        const r = RejectedEventSchema.safeParse(decodeJson(msg.data));
        if (!r.success || r.data.runId !== runId) continue;
        if (json) output.out(JSON.stringify({ event: 'rejected', ...r.data }));
        else output.err(`request ${runId} rejected:\n${r.data.reasons.map((x) => `  - ${x}`).join('\n')}`);
        finish(EXIT.rejected);
        return;
      }
    })();
  });
  return { result };
}
